"""The training pipeline both backends consume: a `Dataset` as seeded (NCHW float32 images, int64 labels)
batches, augmented as torchvision's `RandomCrop(size, padding)` and `RandomHorizontalFlip`, normalised as
`ToTensor` and `Normalize`. Keras converts NCHW to NHWC once, at its model's input."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from parity.io.data import DataError, Dataset, Preprocess


def augment(images: np.ndarray, pre: Preprocess, rng: np.random.Generator) -> np.ndarray:
    """Seeded random crop (after zero padding) and horizontal flip, per image."""
    out = images
    if pre.crop_padding:
        p = pre.crop_padding
        padded = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)))
        offsets = rng.integers(0, 2 * p + 1, size=(len(images), 2))
        h, w = images.shape[1:3]
        out = np.stack([padded[i, y : y + h, x : x + w] for i, (y, x) in enumerate(offsets)])
    if pre.flip:
        mirror = rng.random(len(images)) < 0.5
        out = np.where(mirror[:, None, None, None], out[:, :, ::-1], out)
    return out


def num_batches(n: int, batch: int, train: bool) -> int:
    """Training drops the last partial batch (BatchNorm cannot train on one image); evaluation keeps it."""
    return n // batch if train else -(-n // batch)


def batches(
    data: Dataset, pre: Preprocess, batch: int, seed: int = 0, epoch: int = 0, train: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(NCHW float32 images, int64 labels) batches of `data`.

    Training batches are shuffled and augmented by a generator seeded with (seed, epoch) alone, so a
    resumed run and each backend see exactly the batches of an uninterrupted one.

    Args:
        data: the dataset.
        pre: resize size (checked), normalisation and augmentation.
        batch: images per batch.
        seed, epoch: seed the order and augmentation.
        train: shuffle, augment and drop the last partial batch.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if data.images.shape[1:3] != (pre.size, pre.size):
        raise DataError(
            f"{data.name}: images are {data.images.shape[2]}x{data.images.shape[1]}, "
            f"preprocessing expects {pre.size}x{pre.size}"
        )
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(data)) if train else np.arange(len(data))
    for b in range(num_batches(len(data), batch, train)):
        index = order[b * batch : (b + 1) * batch]
        images = data.images[index]
        if train:
            images = augment(images, pre, rng)
        yield pre.normalise_batch(images), data.labels[index]
