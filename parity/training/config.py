"""`TrainConfig`: one training run's settings, validated, and what a resumed run must keep of them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from parity.backends import BACKENDS
from parity.io.data import Preprocess
from parity.spec import OPTIMIZERS

HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "images_per_s")
DRIFT_FIELDS = ("epoch", "val_acc_gap", "val_loss_gap", "weight_distance")
RESUME_FIXED = (
    "data",
    "arch",
    "spec",
    "backends",
    "batch",
    "lr",
    "optimizer",
    "momentum",
    "weight_decay",
    "size",
    "seed",
    "normalise",
    "crop_padding",
    "flip",
    "sync_bn",
)
"""Settings a resumed run must share with the run it continues (epochs may grow; device and the number of
processes or devices may change)."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Args:
        data: "digits", "cifar10:PATH" or an ImageFolder path.
        arch: preset name; `spec` holds field overrides (stem, widths, ...).
        backends: which models to train, from the same initial weights.
        epochs, batch, lr: as in every tutorial (constant learning rate).
        optimizer: "sgd" (momentum, coupled weight decay: torch.optim.SGD) or "adam" (torch.optim.Adam's rule).
        momentum, weight_decay: torch's conventions.
        size: images are resized to size x size.
        seed: seeds initial weights, split, batch order and augmentation.
        device: torch device ("cpu", "cuda"); Keras places itself.
        normalise, crop_padding, flip: see `parity.io.data.Preprocess`.
        devices: Keras only: data parallel over this many devices (keras.distribution on JAX).
        sync_bn: torch under torchrun: BatchNorm over the global batch (SyncBatchNorm, CUDA only); one
            process, and Keras on several devices, normalise over the global batch anyway.
    """

    data: str
    arch: str = "resnet18"
    spec: dict = field(default_factory=dict)
    backends: tuple[str, ...] = BACKENDS
    epochs: int = 10
    batch: int = 32
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    size: int = 32
    seed: int = 0
    device: str = "cpu"
    normalise: str = "imagenet"
    crop_padding: int = 0
    flip: bool = False
    devices: int = 1
    sync_bn: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "backends", tuple(self.backends))
        unknown = [b for b in self.backends if b not in BACKENDS]
        if not self.backends or unknown:
            raise ValueError(f"backends must be torch, keras or both, got {', '.join(self.backends) or 'none'}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("epochs", "size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.batch < 2:
            raise ValueError(f"--batch must be >= 2 (BatchNorm cannot train on one image), got {self.batch}")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError("--weight-decay must be >= 0 and --momentum in [0, 1)")
        if self.devices < 1:
            raise ValueError(f"--devices must be >= 1, got {self.devices}")
        if self.devices > 1 and self.backends != ("keras",):
            raise ValueError(
                f"--devices {self.devices} spreads the Keras model over devices (--backend keras); "
                "torch trains on several devices with --nproc N (torchrun)"
            )

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess(self.size, self.normalise, self.crop_padding, self.flip)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "backends": list(self.backends)}
