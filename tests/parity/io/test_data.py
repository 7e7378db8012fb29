"""parity.io.data: readers on small files in the real formats, bad data named, the pipeline seeded."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from parity.io.data import (
    CIFAR_CLASSES,
    DataError,
    Dataset,
    Preprocess,
    cifar10,
    digits,
    image_folder,
    read_cifar_pickle,
    stack_images,
)
from parity.io.pipeline import batches


def write_folder(root, classes=("cat", "dog"), per_class=5, size=(12, 10)):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def test_image_folder_split_is_seeded_per_class_and_resized(tmp_path):
    root = write_folder(tmp_path / "pets")
    (root / "cat" / "notes.txt").write_text("not an image")  # ignored, as torchvision's ImageFolder does
    train, val = image_folder(root, size=8, seed=3)
    assert train.classes == val.classes == ("cat", "dog")
    assert train.images.shape == (8, 8, 8, 3) and val.images.shape == (2, 8, 8, 3)
    assert sorted(val.labels.tolist()) == [0, 1]
    again = image_folder(root, size=8, seed=3)[1]
    assert np.array_equal(again.images, val.images)


def test_image_folder_uses_train_and_val_folders(tmp_path):
    write_folder(tmp_path / "d" / "train", per_class=3)
    write_folder(tmp_path / "d" / "val", per_class=2)
    train, val = image_folder(tmp_path / "d", size=8)
    assert (len(train), len(val)) == (6, 4)


def test_empty_class_folder_is_named(tmp_path):
    root = write_folder(tmp_path / "pets")
    (root / "bird").mkdir()
    with pytest.raises(DataError, match=r"bird: empty class folder"):
        image_folder(root, size=8)


def test_unreadable_image_is_named(tmp_path):
    root = write_folder(tmp_path / "pets")
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match=r"broken\.jpg: not a readable image"):
        image_folder(root, size=8)


def test_mixed_sizes_without_resize_name_the_file(tmp_path):
    root = write_folder(tmp_path / "pets")
    Image.new("RGB", (20, 20)).save(root / "dog" / "big.png")
    with pytest.raises(DataError, match=r"big\.png is 20x20"):
        image_folder(root, size=None)
    with pytest.raises(DataError, match="b.png is 2x1"):
        stack_images([np.zeros((1, 1, 3)), np.zeros((1, 2, 3))], ["a.png", "b.png"])


def cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"batch",
        b"labels": rng.integers(0, 10, n).tolist(),
        b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
        b"filenames": [b"x.png"] * n,
    }


def write_cifar(folder, n=4):
    folder.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for seed, name in enumerate(names):
        with open(folder / name, "wb") as handle:
            pickle.dump(cifar_batch(n, seed), handle, protocol=2)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR_CLASSES]}, handle, protocol=2)
    return folder


def test_cifar_python_and_binary_batches_read_the_same(tmp_path):
    py = write_cifar(tmp_path / "cifar-10-batches-py")
    binary = tmp_path / "cifar-10-batches-bin"
    binary.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = read_cifar_pickle(py / name)
        records = np.concatenate([np.array(batch["labels"], np.uint8)[:, None], batch["data"]], axis=1)
        records.tofile(binary / f"{name}.bin")
    train, test = cifar10(tmp_path)  # finds cifar-10-batches-py inside
    train_bin, test_bin = cifar10(binary)
    assert train.images.shape == (20, 32, 32, 3) and len(test) == 4 and train.classes == CIFAR_CLASSES
    assert np.array_equal(train.images, train_bin.images) and np.array_equal(test.labels, test_bin.labels)
    first = cifar_batch(4, 0)
    # the 3072 bytes are the red plane, then green, then blue, row-major
    assert np.array_equal(train.images[0, :, :, 1], first[b"data"][0, 1024:2048].reshape(32, 32))
    assert cifar10(py, size=16)[0].images.shape == (20, 16, 16, 3)


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_pickle_with_code_is_refused_and_never_runs(tmp_path):
    folder = write_cifar(tmp_path / "cifar-10-batches-py")
    marker = tmp_path / "pwned"
    with open(folder / "data_batch_3", "wb") as handle:
        pickle.dump({b"data": Payload(marker), b"labels": [1]}, handle, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_3: not a CIFAR-10 batch \(refused global posix\.system\)"):
        cifar10(folder)
    assert not marker.exists()


def test_corrupt_cifar_files_are_named(tmp_path):
    folder = write_cifar(tmp_path / "cifar-10-batches-py")
    (folder / "test_batch").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match="test_batch: not a CIFAR-10 batch"):
        cifar10(folder)
    binary = tmp_path / "bin"
    binary.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (binary / name).write_bytes(bytes(3073))
    (binary / "data_batch_2.bin").write_bytes(bytes(3000))
    with pytest.raises(DataError, match=r"data_batch_2\.bin: 3000 bytes is not a whole number"):
        cifar10(binary)
    (folder / "data_batch_5").unlink()
    with pytest.raises(DataError, match="missing data_batch_5"):
        cifar10(folder)


def test_digits_are_real_and_split_per_class():
    train, val = digits(size=16)
    assert (len(train), len(val)) == (1438, 359) and train.images.shape[1:] == (16, 16, 3)
    assert set(val.labels.tolist()) == set(range(10))
    assert train.images.max() == 255 and train.images.min() == 0


def test_batches_are_seeded_augmented_and_normalised():
    rng = np.random.default_rng(0)
    data = Dataset(rng.integers(0, 255, (10, 8, 8, 3), dtype=np.uint8), np.arange(10) % 2, ("a", "b"), "toy")
    pre = Preprocess(8, "half", crop_padding=2, flip=True)
    first = list(batches(data, pre, 4, seed=1, epoch=0))
    assert len(first) == 2 and first[0][0].shape == (4, 3, 8, 8) and first[0][0].dtype == np.float32
    again = list(batches(data, pre, 4, seed=1, epoch=0))
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    other = list(batches(data, pre, 4, seed=1, epoch=1))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))
    plain = list(batches(data, Preprocess(8, "half"), 4, train=False))
    assert [len(b[1]) for b in plain] == [4, 4, 2]  # evaluation keeps the last partial batch
    assert np.allclose(plain[0][0][0], (data.images[0].transpose(2, 0, 1) / 255 - 0.5) / 0.5)
    with pytest.raises(DataError, match="images are 8x8, preprocessing expects 16x16"):
        next(batches(data, Preprocess(16), 4))
