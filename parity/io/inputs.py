"""Inputs a user brings: a `.npy` batch (NCHW) or image files, preprocessed as torchvision's ImageNet eval.

Images: decoded with Pillow (RGB, or grayscale for 1-channel models), the shorter side resized to
`size * 256 / 224` (bilinear), centre-cropped to `size` x `size`, scaled to [0, 1] and normalised
with ImageNet's mean and std: torchvision's `Resize(256), CenterCrop(224), ToTensor(), Normalize`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from parity.spec import ResNetSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_RATIO = 256 / 224
"""torchvision's eval transform resizes to 256 before its 224 crop."""

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_image(
    path: str | os.PathLike[str],
    size: int = 224,
    channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> np.ndarray:
    """One image file as a normalised (channels, size, size) float32 array.

    Args:
        path: an image file Pillow can decode.
        size: output height and width.
        channels: 3 (RGB) or 1 (grayscale; normalised with the mean of the means and stds).
        mean, std: per-channel statistics the weights were trained with (default ImageNet's; a model
            folder records its own).
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"images give 1 or 3 channels; the model takes {channels}: pass a .npy batch instead")
    try:
        with Image.open(path) as opened:
            image, _ = to_mode(opened, "RGB" if channels == 3 else "L")
            short = round(size * RESIZE_RATIO)
            width, height = image.size
            scale = short / min(width, height)
            image = image.resize(
                (max(size, round(width * scale)), max(size, round(height * scale))), Image.Resampling.BILINEAR
            )
            left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
            image = image.crop((left, top, left + size, top + size))
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    centre = np.asarray(IMAGENET_MEAN if mean is None else mean, np.float32)
    scale = np.asarray(IMAGENET_STD if std is None else std, np.float32)
    if channels == 1:
        return ((array - np.float32(centre.mean())) / np.float32(scale.mean()))[None]
    return ((array - centre) / scale).transpose(2, 0, 1)


SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""Pillow's modes for 16-bit grayscale (and 32-bit integer) images; `convert` would clip them at 255."""


def to_mode(image: Any, mode: str) -> tuple[Any, str]:
    """A Pillow image in 8-bit `mode` ("RGB" or "L"), scaled by its real bit depth, and what was done to it.

    A 16-bit image is divided by 65535 (Pillow's own `convert` clips it at 255, saturating it); alpha
    is dropped; grayscale is repeated into RGB (or RGB averaged to grayscale, as Pillow does).
    """
    from PIL import Image

    done = []
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        depth = 16 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 8
        scaled = np.clip(np.round(values / (2**depth - 1) * 255), 0, 255).astype(np.uint8)
        image = Image.fromarray(scaled, "L")
        done.append(f"{depth}-bit grayscale scaled to 8 bits")
    if image.mode != mode:
        dropped = " (alpha dropped)" if "A" in image.mode or "transparency" in image.info else ""
        done.append(f"{image.mode} -> {mode}{dropped}")
        image = image.convert(mode)
    return image, "; ".join(done) or f"{mode} as is"


def describe_images(paths: Sequence[str | os.PathLike[str]], channels: int = 3) -> list[str]:
    """One line per image file: what `load_image` converts it from (for the user to see)."""
    from PIL import Image

    lines = []
    for path in paths:
        with Image.open(path) as opened:
            _, done = to_mode(opened, "RGB" if channels == 3 else "L")
        lines.append(f"{path}: {done}")
    return lines


def load_npy(path: str | os.PathLike[str], channels: int) -> np.ndarray:
    """A float NCHW batch from a `.npy` file (never unpickled); a single CHW image gets a batch axis."""
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(
            f"{path}: not a numeric .npy array ({exc.args[0].split('.')[0]}); it was not unpickled"
        ) from None
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[1] != channels:
        raise ValueError(
            f"{path}: expected an NCHW batch with {channels} channels, got shape {array.shape}"
            + (" (this looks NHWC: transpose it to NCHW)" if array.ndim == 4 and array.shape[-1] == channels else "")
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{path}: expected a float array (normalised images), got dtype {array.dtype}")
    return array.astype(np.float32)


def load_inputs(
    paths: Sequence[str | os.PathLike[str]],
    size: int = 224,
    channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> np.ndarray:
    """One NCHW float32 batch from one `.npy` file or any number of image files.

    Args:
        paths: a single `.npy` file, or image files (see `IMAGE_EXTENSIONS`).
        size: image height and width after preprocessing (images only).
        channels: the model's input channels.
        mean, std: the normalisation (default ImageNet's; see `load_image`).
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError("no input file given")
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"no input file at {path}")
    npys = [p for p in files if p.suffix.lower() == ".npy"]
    if npys:
        if len(files) != 1:
            raise ValueError("--input takes one .npy batch, or image files, not both or several .npy files")
        return load_npy(files[0], channels)
    unknown = [str(p) for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
    if unknown:
        raise ValueError(
            f"unknown input file type: {', '.join(unknown)}; use .npy (NCHW) or an image "
            f"({', '.join(IMAGE_EXTENSIONS)})"
        )
    return np.stack([load_image(p, size, channels, mean, std) for p in files])


def random_input(spec: ResNetSpec, batch: int, height: int, width: int, seed: int) -> np.ndarray:
    """A seeded standard-normal NCHW batch (roughly what a normalised image looks like)."""
    rng = np.random.default_rng(seed + 1_000_003)
    return rng.standard_normal((batch, spec.in_channels, height, width)).astype(np.float32)
