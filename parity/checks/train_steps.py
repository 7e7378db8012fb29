"""Training-step parity: the same SGD steps, from the same weights on the same batches, in both backends.

Each step: forward in training mode (BN on batch statistics, running statistics updated), mean
cross-entropy on the logits, gradients, then SGD with momentum and weight decay as
`torch.optim.SGD(lr, momentum, weight_decay)` does it. Compared: the loss of every step, every
gradient of every step, and after the last step every weight and BN running statistic.

Both sides train with the optimizers `resnet-parity train` ships (each adapter's `make_optimizer`:
torch.optim.SGD, and `resnet_keras.train.SGD` with torch's coupled weight decay), so this check
measures the update users train with. The naive contrast (`decoupled_decay=True`) swaps in Keras'
own SGD(weight_decay=...), which shrinks the weights directly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parity.backends import adapter, adapter_named, backend_of, spec_of
from parity.checks.diff import StageDiff
from parity.core import tolerances
from parity.io.weights import get_weights, set_weights
from parity.spec import ResNetSpec


@dataclass(frozen=True)
class SGDConfig:
    """SGD hyper-parameters in torch's terms.

    Args:
        lr: learning rate.
        momentum: heavy-ball momentum (torch's, dampening 0, not Nesterov).
        weight_decay: L2 coefficient, coupled into the gradient as torch does.
    """

    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4


@dataclass
class TrainTrace:
    """What one backend did: losses and gradients per step, weights after the last step."""

    losses: list[float] = field(default_factory=list)
    grads: list[dict[str, np.ndarray]] = field(default_factory=list)
    weights: dict[str, np.ndarray] = field(default_factory=dict)


DTYPES = ("float64", "float32")


def training_pair(spec: ResNetSpec, weights: dict, dtype: str = "float64", naive: str | None = None) -> tuple:
    """(torch model, Keras model) of `spec` in `dtype`, both holding `weights`.

    Args:
        spec: the architecture.
        weights: canonical weights for both.
        dtype: "float64" (default: isolates the update rules from fp32 rounding) or "float32".
        naive: build the Keras side as this naive port instead (`parity.backends.keras.NAIVE_PORTS`, the lessons).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    torch_side, keras_side = adapter_named("torch"), adapter_named("keras")
    torch_model = torch_side.build(spec, dtype)
    keras_model = keras_side.build(spec, dtype) if naive is None else keras_side.build_naive(spec, naive, dtype)
    set_weights(torch_model, weights)
    set_weights(keras_model, weights)
    return torch_model, keras_model


def make_batches(spec: ResNetSpec, steps: int, batch: int, height: int, width: int, seed: int) -> list:
    """Seeded (NCHW images, integer labels) pairs, one per step."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if batch < 2:
        raise ValueError(f"batch must be >= 2 for training-mode BatchNorm, got {batch}")
    rng = np.random.default_rng(seed + 7_000_003)
    return [
        (
            rng.standard_normal((batch, spec.in_channels, height, width)).astype(np.float32),
            rng.integers(0, spec.num_classes, size=batch).astype(np.int64),
        )
        for _ in range(steps)
    ]


def train_side(model: Any, batches: list, config: SGDConfig, stock: bool = False) -> TrainTrace:
    """Train one model on `batches` with the optimizer `resnet-parity train` uses; losses and gradients of
    every step, weights after the last.

    Args:
        model: a model of either backend.
        batches: from `make_batches` (NCHW).
        config: SGD hyper-parameters (torch's conventions).
        stock: use the framework's own optimizer (Keras: decoupled weight decay; a naive port) instead.
    """
    side = adapter(model)
    make = side.stock_optimizer if stock else side.make_optimizer
    optimizer = make(model, "sgd", config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    trace = TrainTrace()
    for images, labels in batches:
        loss, grads = side.train_step_with_gradients(model, optimizer, images, labels)
        trace.losses.append(loss)
        trace.grads.append(grads)
    trace.weights = get_weights(model)
    return trace


@dataclass
class TrainReport:
    """Training-step parity figures: worst relative difference of each kind, and the verdict."""

    arch: str
    steps: int
    config: dict
    loss: list[StageDiff]
    grads: list[StageDiff]  # worst tensor of each step
    weights: StageDiff  # worst trainable tensor after the last step
    running: StageDiff  # worst running statistic after the last step
    tolerance: float
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(d.passed for d in self.loss + self.grads + [self.weights, self.running])

    @property
    def worst_grad(self) -> StageDiff:
        return max(self.grads, key=lambda d: d.max_rel)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        data["passed"] = self.passed
        return data


def worst_tensor(
    label: str, a: dict[str, np.ndarray], b: dict[str, np.ndarray], keys: list[str], tolerance: float
) -> StageDiff:
    """The StageDiff of the tensor (among `keys`) whose relative difference is largest.

    A tensor is measured against at least `TRAIN_ZERO_FLOOR` x the largest of them all: a conv bias that a
    training-mode BatchNorm follows has a zero gradient up to rounding, and rounding has no relative size.
    """
    missing = [k for k in keys if k not in a or k not in b]
    if missing:
        raise KeyError(f"{label}: no value for {', '.join(missing[:5])}")
    largest = max((float(np.max(np.abs(a[k]), initial=0.0)) for k in keys), default=0.0)
    floor = tolerances.TRAIN_ZERO_FLOOR * largest
    diffs = [StageDiff.measure(f"{label}:{k}", a[k], b[k], tolerance, floor) for k in keys]
    return max(diffs, key=lambda d: (not d.passed, d.max_rel if not math.isnan(d.max_rel) else math.inf))


def compare_training(
    torch_model: Any,
    keras_model: Any,
    steps: int = 3,
    batch: int = 4,
    height: int = 64,
    width: int | None = None,
    seed: int = 0,
    config: SGDConfig = SGDConfig(),
    tolerance: float | None = None,
    decoupled_decay: bool = False,
) -> TrainReport:
    """Train both models (already holding the same weights) for `steps` SGD steps and compare.

    Args:
        torch_model, keras_model: models of one spec with identical weights.
        steps, batch, height, width: the seeded training batches.
        seed: seeds the batches.
        config: SGD hyper-parameters (torch's conventions).
        tolerance: max relative difference of every compared tensor (default: TRAIN_STEP_FP64 for
            float64 models; float32 models need an explicit one, see `parity.core.tolerances`).
        decoupled_decay: train the Keras side with Keras' decoupled weight decay (a naive port).
    """
    if backend_of(torch_model) != "torch" or backend_of(keras_model) != "keras":
        raise TypeError("compare_training takes (torch_model, keras_model)")
    spec = spec_of(torch_model)
    if spec_of(keras_model) != spec:
        raise ValueError("the two models have different specs")
    width = height if width is None else width
    dtype = adapter(torch_model).dtype_of(torch_model)
    if tolerance is None and dtype != "float64":
        raise ValueError(
            f"no default training tolerance for {dtype} models (fp32 gradients are chaotic at "
            "ReLU/max-pool kinks, see parity.core.tolerances.TRAIN_STEP_FP64); pass tolerance="
        )
    tol = tolerances.TRAIN_STEP_FP64 if tolerance is None else float(tolerance)
    batches = make_batches(spec, steps, batch, height, width, seed)
    start = time.perf_counter()
    ta = train_side(torch_model, batches, config)
    tb = train_side(keras_model, batches, config, stock=decoupled_decay)
    trainable = [k for k in spec.canonical_shapes() if not k.endswith(("running_mean", "running_var"))]
    running = [k for k in spec.canonical_shapes() if k.endswith(("running_mean", "running_var"))]
    return TrainReport(
        arch=spec.name,
        steps=steps,
        config={
            "lr": config.lr,
            "momentum": config.momentum,
            "weight_decay": config.weight_decay,
            "batch": batch,
            "size": [height, width],
            "seed": seed,
            "dtype": dtype,
        },
        loss=[
            StageDiff.measure(f"loss step {i + 1}", np.array(a), np.array(b), tol)
            for i, (a, b) in enumerate(zip(ta.losses, tb.losses))
        ],
        grads=[
            worst_tensor(f"grad step {i + 1}", ga, gb, trainable, tol)
            for i, (ga, gb) in enumerate(zip(ta.grads, tb.grads))
        ],
        weights=worst_tensor("weights", ta.weights, tb.weights, trainable, tol),
        running=worst_tensor("running", ta.weights, tb.weights, running, tol),
        tolerance=tol,
        seconds=time.perf_counter() - start,
    )
