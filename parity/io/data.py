"""Training data, framework-free: three readers and one numpy pipeline that both backends consume.

Readers give a `Dataset` of uint8 RGB images already resized to the training size (decoded once,
so a bad file fails before any training starts, naming the file):

- `image_folder(path)`: torchvision's ImageFolder layout, one sub-directory per class; `train/` and
  `val/` sub-directories when present, else a seeded, per-class 80/20 split.
- `cifar10(path)`: the official CIFAR-10 download, python batches (pickles, read with a restricted
  unpickler that admits arrays, lists, strings and bytes only) or the binary version.
- `digits()`: scikit-learn's bundled 8x8 handwritten digits (real data, nothing to download).

`parity.io.pipeline.batches` turns a Dataset into (NCHW float32 images, int64 labels) pairs: seeded shuffle per epoch,
seeded random crop (zero padding) and horizontal flip for training, then scale to [0, 1] and
normalise, as torchvision's `RandomCrop(size, padding)`, `RandomHorizontalFlip`, `ToTensor`,
`Normalize` do. Keras converts NCHW to NHWC once, at its model's input.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity.core.layout import nchw, nhwc
from parity.io.inputs import IMAGE_EXTENSIONS, IMAGENET_MEAN, IMAGENET_STD, to_mode

NORMALISATIONS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "half": ((0.5,) * 3, (0.5,) * 3)}
"""Name -> (mean, std): ImageNet's statistics, or (x - 0.5) / 0.5 as many CIFAR tutorials use."""

VAL_FRACTION = 0.2
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_SIDE = 32


class DataError(ValueError):
    """Training data that cannot be used as it is; the message names the file or folder."""


@dataclass
class Dataset:
    """Images and labels in memory.

    Args:
        images: uint8 (N, H, W, 3) RGB images, all one size.
        labels: int64 (N,) class indices into `classes`.
        classes: class names, in label order.
        name: where the data came from, for reports.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray, name: str) -> Dataset:
        return Dataset(self.images[index], self.labels[index], self.classes, name)


@dataclass(frozen=True)
class Preprocess:
    """How images become model input; stored in checkpoints so `predict` does the same.

    Args:
        size: height and width every image is resized to (bilinear).
        normalise: a key of `NORMALISATIONS`.
        crop_padding: training only: zero-pad by this many pixels, then crop `size` at a random offset (0: off).
        flip: training only: mirror left-right with probability 0.5.
    """

    size: int
    normalise: str = "imagenet"
    crop_padding: int = 0
    flip: bool = False

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {', '.join(NORMALISATIONS)}, got {self.normalise!r}")
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {self.crop_padding}")

    def to_dict(self) -> dict[str, Any]:
        mean, std = NORMALISATIONS[self.normalise]
        return {**asdict(self), "mean": list(mean), "std": list(std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        return cls(**{k: data[k] for k in ("size", "normalise", "crop_padding", "flip")})

    def normalise_batch(self, images: np.ndarray) -> np.ndarray:
        """uint8 NHWC images -> normalised float32 NCHW."""
        mean, std = (np.asarray(v, np.float32) for v in NORMALISATIONS[self.normalise])
        out = (images.astype(np.float32) / np.float32(255) - mean) / std
        return np.ascontiguousarray(nchw(out))


# -- decoding ----------------------------------------------------------------------------------------


def read_image(path: str | os.PathLike[str], size: int | None) -> np.ndarray:
    """One image file as uint8 (H, W, 3) RGB, resized to size x size (bilinear) unless size is None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image, _ = to_mode(opened, "RGB")
            if size is not None and image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None


def resize_array(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) images resized to size x size as `read_image` resizes a file."""
    from PIL import Image

    if images.shape[1:3] == (size, size):
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BILINEAR)) for im in images])


def stack_images(images: Sequence[np.ndarray], names: Sequence[str]) -> np.ndarray:
    """One (N, H, W, 3) array; a different size is refused naming both files."""
    for image, name in zip(images, names):
        if image.shape != images[0].shape:
            raise DataError(
                f"mixed image sizes in one batch: {name} is {image.shape[1]}x{image.shape[0]}, "
                f"{names[0]} is {images[0].shape[1]}x{images[0].shape[0]}; give a size to resize to"
            )
    return np.stack(images)


# -- ImageFolder -------------------------------------------------------------------------------------


def _class_folders(root: Path) -> list[Path]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root}: no class sub-directories (ImageFolder layout: {root}/<class>/<image>)")
    return folders


def _image_files(folder: Path) -> list[Path]:
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise DataError(f"{folder}: empty class folder (no {', '.join(IMAGE_EXTENSIONS)} files)")
    return files


def _read_folder(root: Path, size: int | None, classes: Sequence[str] | None = None) -> Dataset:
    folders = _class_folders(root)
    names = tuple(p.name for p in folders)
    if classes is not None and names != tuple(classes):
        raise DataError(f"{root}: classes {', '.join(names)} differ from the training classes {', '.join(classes)}")
    files = [(f, label) for label, folder in enumerate(folders) for f in _image_files(folder)]
    images = [read_image(f, size) for f, _ in files]
    return Dataset(
        stack_images(images, [str(f) for f, _ in files]),
        np.array([label for _, label in files], np.int64),
        names,
        str(root),
    )


def image_folder(
    path: str | os.PathLike[str], size: int | None, seed: int = 0, val_fraction: float = VAL_FRACTION
) -> tuple[Dataset, Dataset]:
    """(train, val) from an ImageFolder tree.

    Args:
        path: a folder of class folders, or of `train/` and `val/` folders of class folders.
        size: resize every image to size x size (None: keep sizes, which must then all agree).
        seed: seeds the split when there is no `val/` folder.
        val_fraction: share of each class held out for validation when splitting.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"no data folder at {root}")
    if (root / "train").is_dir() and (root / "val").is_dir():
        train = _read_folder(root / "train", size)
        return train, _read_folder(root / "val", size, train.classes)
    return split(_read_folder(root, size), seed, val_fraction)


def split(data: Dataset, seed: int = 0, val_fraction: float = VAL_FRACTION) -> tuple[Dataset, Dataset]:
    """A seeded split holding out `val_fraction` of every class (at least one image of each)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label, name in enumerate(data.classes):
        index = rng.permutation(np.flatnonzero(data.labels == label))
        if len(index) < 2:
            raise DataError(f"{data.name}: class {name!r} has {len(index)} image(s); a split needs at least 2")
        held = max(1, round(len(index) * val_fraction))
        val.append(index[:held])
        train.append(index[held:])
    return (
        data.subset(np.sort(np.concatenate(train)), f"{data.name} (train)"),
        data.subset(np.sort(np.concatenate(val)), f"{data.name} (val)"),
    )


# -- CIFAR-10 ----------------------------------------------------------------------------------------


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(text, "latin1").
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refused codec {encoding!r}")
    return text.encode("latin1")


class ArrayUnpickler(pickle.Unpickler):
    """Admits numpy arrays, dicts, lists, strings and bytes; any other global is refused before it is looked up."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: _latin1,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return self.ALLOWED[(module, name)]()


def read_cifar_pickle(path: Path) -> dict:
    """One python-version CIFAR batch, unpickled with `ArrayUnpickler` (keys decoded to str)."""
    try:
        with open(path, "rb") as handle:
            data = ArrayUnpickler(io.BytesIO(handle.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(f"{path}: not a CIFAR-10 batch ({exc}); nothing in it was executed") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a CIFAR-10 batch (a {type(data).__name__}, expected a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _cifar_python(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    path = folder / name
    batch = read_cifar_pickle(path)
    data, labels = batch.get("data"), batch.get("labels")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * CIFAR_SIDE**2
    ):
        raise DataError(f"{path}: 'data' is not a uint8 (N, 3072) array")
    if not isinstance(labels, list) or len(labels) != len(data):
        raise DataError(f"{path}: 'labels' is not a list of {len(data)} class indices")
    return nhwc(data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE)), np.asarray(labels, np.int64)


def _cifar_binary(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    path = folder / name
    raw = np.fromfile(path, np.uint8)
    record = 1 + 3 * CIFAR_SIDE**2
    if raw.size == 0 or raw.size % record:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte CIFAR-10 records")
    raw = raw.reshape(-1, record)
    return nhwc(raw[:, 1:].reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE)), raw[:, 0].astype(np.int64)


def cifar10(path: str | os.PathLike[str], size: int | None = None) -> tuple[Dataset, Dataset]:
    """(train, test) from the official CIFAR-10 download.

    Args:
        path: `cifar-10-batches-py` or `cifar-10-batches-bin` (or the folder holding one of them).
        size: resize the 32x32 images to size x size (None: keep 32).
    """
    root = Path(path)
    for folder in (root, root / "cifar-10-batches-py", root / "cifar-10-batches-bin"):
        if (folder / "data_batch_1").is_file():
            read, train_names, test_name = _cifar_python, [f"data_batch_{i}" for i in range(1, 6)], "test_batch"
            break
        if (folder / "data_batch_1.bin").is_file():
            read, train_names, test_name = _cifar_binary, [f"data_batch_{i}.bin" for i in range(1, 6)], "test_batch.bin"
            break
    else:
        raise DataError(f"{root}: no CIFAR-10 batches (expected data_batch_1..5 and test_batch, python or .bin)")
    missing = [n for n in train_names + [test_name] if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}")
    parts = [read(folder, n) for n in train_names]
    test_images, test_labels = read(folder, test_name)
    out = []
    for images, labels, what in (
        (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), "train"),
        (test_images, test_labels, "test"),
    ):
        if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR_CLASSES)):
            raise DataError(f"{folder}: {what} labels outside 0..9")
        resized = images if size is None else resize_array(np.ascontiguousarray(images), size)
        out.append(Dataset(np.ascontiguousarray(resized), labels, CIFAR_CLASSES, f"cifar10 {what}"))
    return out[0], out[1]


# -- bundled digits ----------------------------------------------------------------------------------


def digits(size: int, seed: int = 0, val_fraction: float = VAL_FRACTION) -> tuple[Dataset, Dataset]:
    """(train, val) from scikit-learn's 1,797 bundled 8x8 digits, as RGB images resized to size x size."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the bundled digits need scikit-learn: pip install 'resnet-parity[data]'") from None
    bunch = load_digits()
    # 0..16 ink intensity -> 0..255 grey, the three channels equal.
    grey = np.round(bunch.images * (255 / 16)).astype(np.uint8)
    images = resize_array(np.repeat(grey[..., None], 3, axis=-1), size)
    data = Dataset(images, bunch.target.astype(np.int64), tuple(str(d) for d in range(10)), "digits")
    return split(data, seed, val_fraction)


def load_data(source: str, size: int, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(train, val) from 'digits', 'cifar10:PATH' or an ImageFolder path."""
    if source == "digits":
        return digits(size, seed)
    if source.startswith("cifar10:"):
        return cifar10(source[len("cifar10:") :], size)
    return image_folder(source, size, seed)
