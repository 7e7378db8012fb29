"""`resnet-parity predict` and `evaluate`: a trained checkpoint, in either backend, on images or a dataset.

The checkpoint (`best.safetensors` from `resnet-parity train`) carries its spec, class names and
preprocessing, so nothing about the training has to be repeated on the command line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity.io.data import Dataset, Preprocess, load_data, read_image
from parity.training.trainer import cross_entropy, evaluate_logits, softmax


@dataclass
class Trained:
    """A model loaded from a training checkpoint, with what it was trained on."""

    model: Any
    backend: str
    classes: tuple[str, ...]
    preprocess: Preprocess
    metadata: dict


def load_trained(path: str | os.PathLike[str], backend: str) -> Trained:
    """A model of `backend` holding a `resnet-parity train` checkpoint, with its classes and preprocessing."""
    from parity.backends import adapter_named
    from parity.io.checkpoints import read_with_spec
    from parity.io.formats import read_metadata
    from parity.io.libraries import library_of
    from parity.io.weights import set_weights

    library = library_of(Path(path))
    if Path(path).is_dir() or (library is not None and library.FOLDER):  # its own labels and statistics
        return _load_folder(path, backend)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    meta = read_metadata(path)
    missing = [k for k in ("classes", "preprocess") if k not in meta]
    if missing:
        raise ValueError(
            f"{path} has no {' or '.join(missing)} in its metadata: predict and evaluate take a "
            "best.safetensors written by `resnet-parity train`"
        )
    spec, weights = read_with_spec(path)
    if len(meta["classes"]) != spec.num_classes:
        raise ValueError(f"{path}: {len(meta['classes'])} class names for {spec.num_classes} outputs")
    model = adapter_named(backend).build(spec)
    set_weights(model, weights)
    return Trained(model, backend, tuple(meta["classes"]), Preprocess.from_dict(meta["preprocess"]), meta)


def _load_folder(path: str | os.PathLike[str], backend: str) -> Trained:
    """A model folder other libraries write, with the class names and preprocessing it records."""
    from parity.backends import adapter_named
    from parity.io.data import NORMALISATIONS
    from parity.io.libraries import read_library
    from parity.io.weights import set_weights

    spec, weights, recorded = read_library(Path(path))
    if not recorded.get("labels") or len(recorded["labels"]) != spec.num_classes:
        raise ValueError(f"{path}: the folder names no class for each of the {spec.num_classes} outputs")
    mean = tuple(round(float(v), 4) for v in recorded.get("mean") or NORMALISATIONS["imagenet"][0])
    std = tuple(round(float(v), 4) for v in recorded.get("std") or NORMALISATIONS["imagenet"][1])
    named = [
        k
        for k, (m, s) in NORMALISATIONS.items()
        if (tuple(round(v, 4) for v in m), tuple(round(v, 4) for v in s)) == (mean, std)
    ]
    if not named:
        raise ValueError(f"{path}: its mean {list(mean)} / std {list(std)} is none of {', '.join(NORMALISATIONS)}")
    preprocess = Preprocess(size=int(recorded.get("size") or 224), normalise=named[0])
    model = adapter_named(backend).build(spec)
    set_weights(model, weights)
    meta = {"classes": list(recorded["labels"]), "preprocess": preprocess.to_dict(), "source": str(path)}
    return Trained(model, backend, tuple(recorded["labels"]), preprocess, meta)


def predict_images(
    trained: Trained, paths: Sequence[str | os.PathLike[str]], topk: int = 5
) -> list[list[tuple[str, float]]]:
    """Per image file, the top-k (class name, softmax probability) pairs, most likely first.

    Args:
        trained: from `load_trained`.
        paths: image files (decoded RGB, resized and normalised as in training).
        topk: how many classes to list (at most the number of classes).
    """
    from parity.backends import adapter_named

    if topk < 1:
        raise ValueError(f"--topk must be >= 1, got {topk}")
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no image at {path}")
    pre = trained.preprocess
    images = pre.normalise_batch(np.stack([read_image(p, pre.size) for p in paths]))
    probs = softmax(adapter_named(trained.backend).predict_logits(trained.model, images))
    k = min(topk, len(trained.classes))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(trained.classes[j], float(p[j])) for j in row] for p, row in zip(probs, order)]


@dataclass
class Evaluation:
    """Loss, accuracy, per-class accuracy and the confusion matrix (rows: true class, columns: predicted)."""

    loss: float
    accuracy: float
    classes: tuple[str, ...]
    per_class: list[float]
    counts: list[int]
    confusion: np.ndarray


def evaluate(trained: Trained, data: Dataset, batch: int = 64) -> Evaluation:
    """Evaluate on `data` (inference mode); its classes must be the checkpoint's."""
    from parity.backends import adapter_named

    if tuple(data.classes) != trained.classes:
        raise ValueError(
            f"{data.name}: classes {', '.join(data.classes)} are not the checkpoint's {', '.join(trained.classes)}"
        )
    logits = evaluate_logits(adapter_named(trained.backend), trained.model, data, trained.preprocess, batch)
    predicted = logits.argmax(1)
    n = len(trained.classes)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (data.labels, predicted), 1)
    counts = confusion.sum(1)
    per_class = [float(confusion[i, i] / counts[i]) if counts[i] else float("nan") for i in range(n)]
    return Evaluation(
        cross_entropy(logits, data.labels),
        float((predicted == data.labels).mean()),
        trained.classes,
        per_class,
        counts.tolist(),
        confusion,
    )


def evaluation_data(source: str, trained: Trained, seed: int | None = None) -> Dataset:
    """The held-out split of `source` at the checkpoint's size: validation split (same seed as
    training, read from the checkpoint) or CIFAR-10's test batch."""
    seed = trained.metadata.get("seed", 0) if seed is None else seed
    return load_data(source, trained.preprocess.size, seed)[1]


def plot_confusion(result: Evaluation, path: str | os.PathLike[str], title: str = "") -> Path:
    """A confusion-matrix PNG (counts, rows true class), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from parity.core.files import save_figure

    n = len(result.classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n))
    ax.imshow(result.confusion, cmap="Blues")
    for i in range(n):
        for j in range(n):
            value = result.confusion[i, j]
            if value:
                ax.text(
                    j,
                    i,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if value > result.confusion.max() / 2 else "black",
                )
    ax.set_xticks(range(n), result.classes, rotation=45, ha="right")
    ax.set_yticks(range(n), result.classes)
    ax.set(xlabel="predicted", ylabel="true", title=title or f"accuracy {result.accuracy:.2%}")
    fig.tight_layout()
    return save_figure(fig, path)
