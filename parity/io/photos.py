"""Real photographs, shipped inside a dependency: scikit-learn's two sample images, cropped and flipped.

scikit-learn bundles `china.jpg` and `flower.jpg` (640x427 each) in `sklearn/datasets/images/`, both released
under Creative Commons Attribution 2.0 (https://creativecommons.org/licenses/by/2.0/): china.jpg by
danielbuechele, flower.jpg by vultilion, on Flickr, retrieved by Robert Layton (the folder's README.txt). They are
read as files: scikit-learn itself is never imported, and nothing is downloaded.

`photo_batch` cuts each into squares at three scales and several places, each also mirrored, and preprocesses them
as torchvision's ImageNet eval (bilinear resize to the model's size, ImageNet mean and std): what the BatchNorm
statistics are calibrated on, what int8 is calibrated on, and what low precision is judged on. Activations of
real images are not those of noise: their first layers see smooth areas and edges, and their channel means are
far from zero, which is where low-precision rounding and int8 scales are decided.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from parity.io.inputs import IMAGENET_MEAN, IMAGENET_STD
from parity.spec import ResNetSpec

FILES = ("china.jpg", "flower.jpg")
LICENCE = (
    "scikit-learn's sample images china.jpg (danielbuechele) and flower.jpg (vultilion), "
    "CC BY 2.0 (https://creativecommons.org/licenses/by/2.0/)"
)

BOXES = (
    (1.0, 0.5, 0.5),
    (1.0, 0.0, 0.5),
    (1.0, 1.0, 0.5),
    (0.7, 0.2, 0.2),
    (0.7, 0.8, 0.2),
    (0.7, 0.2, 0.8),
    (0.7, 0.8, 0.8),
    (0.5, 0.5, 0.5),
    (0.5, 0.1, 0.9),
    (0.5, 0.9, 0.1),
    (0.35, 0.3, 0.6),
    (0.35, 0.7, 0.4),
)
"""(side as a fraction of the photo's shorter side, horizontal place, vertical place; 0 left/top, 1 right/bottom)
of each square cut from each photo: 12 cuts x 2 photos x (as is, mirrored) = 48 inputs."""

COUNT = len(FILES) * len(BOXES) * 2
"""How many different inputs `photo_batch` gives (more are repeated in order)."""


def folder() -> Path:
    """Where scikit-learn keeps its sample images, found without importing it; one line when it is missing."""
    found = importlib.util.find_spec("sklearn")
    if found is None or not found.submodule_search_locations:
        raise ModuleNotFoundError(
            "the photographs come with scikit-learn, which is not installed; pip install 'resnet-parity[data]' "
            "(or pass --data noise, or --input FILES)"
        )
    return Path(next(iter(found.submodule_search_locations))) / "datasets" / "images"


@functools.lru_cache(maxsize=8)
def _cuts(size: int, channels: int) -> np.ndarray:
    from PIL import Image

    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    cuts = []
    for name in FILES:
        with Image.open(folder() / name) as opened:
            photo = opened.convert("RGB" if channels == 3 else "L")
            width, height = photo.size
            for fraction, across, down in BOXES:
                side = round(min(width, height) * fraction)
                left = round((width - side) * across)
                top = round((height - side) * down)
                square = photo.crop((left, top, left + side, top + side))
                square = square.resize((size, size), Image.Resampling.BILINEAR)
                array = np.asarray(square, dtype=np.float32) / 255.0
                if channels == 1:
                    array = ((array - mean.mean()) / std.mean())[None]
                else:
                    array = ((array - mean) / std).transpose(2, 0, 1)
                cuts.append(array)
                cuts.append(array[:, :, ::-1])
    return np.ascontiguousarray(np.stack(cuts), dtype=np.float32)


def photo_batch(count: int, size: int | tuple[int, int], channels: int = 3, start: int = 0) -> np.ndarray:
    """`count` preprocessed photographs as one NCHW float32 batch, always the same ones in the same order.

    Args:
        count: how many (beyond `COUNT` the cuts repeat in order).
        size: height and width (an (H, W) pair is cut square at H and resized to W wide).
        channels: 3 (RGB) or 1 (grayscale).
        start: the index of the first cut (calibration and the checked batch take different cuts).
    """
    height, width = (size, size) if isinstance(size, int) else size
    if channels not in (1, 3):
        raise ValueError(f"photographs give 1 or 3 channels; the model takes {channels}: use --data noise")
    cuts = _cuts(height, channels)
    if width != height:
        from PIL import Image

        cuts = np.stack(
            [np.stack([np.asarray(Image.fromarray(plane).resize((width, height))) for plane in cut]) for cut in cuts]
        ).astype(np.float32)
    order = [(start + i) % COUNT for i in range(count)]
    return cuts[order].copy()


CALIBRATION = (0, 24)
"""(first cut, count) of the photographs BatchNorm and int8 are calibrated on."""
JUDGED = (24, 24)
"""(first cut, count) of the photographs low precision is judged on (other cuts than the calibration's)."""


def photo_inputs(
    spec: ResNetSpec, which: tuple[int, int], height: int, width: int, count: int | None = None
) -> np.ndarray:
    """The calibration or judged photographs (`CALIBRATION`, `JUDGED`) for a model of `spec`, `count` of them."""
    start, default = which
    return photo_batch(count or default, (height, width), spec.in_channels, start)
