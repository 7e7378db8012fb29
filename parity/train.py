"""Training-step parity: the same SGD steps, from the same weights on the same batches, in both backends.

Each step: forward in training mode (BN on batch statistics, running statistics updated), mean
cross-entropy on the logits, gradients, then SGD with momentum and weight decay as
`torch.optim.SGD(lr, momentum, weight_decay)` does it. Compared: the loss of every step, every
gradient of every step, and after the last step every weight and BN running statistic.

# FRAMEWORK: weight decay — torch's SGD adds `weight_decay * w` to the gradient, so the decay runs
# through momentum; Keras' `SGD(weight_decay=...)` is decoupled (it shrinks w directly). Here the
# Keras side adds the same term to its gradients and uses SGD without weight_decay.
# FRAMEWORK: momentum — torch: buf = m * buf + g; w -= lr * buf. Keras: v = m * v - lr * g; w += v.
# With a constant lr, v = -lr * buf at every step, so the two agree without conversion.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parity import tolerances
from parity.compare import StageDiff
from parity.spec import ResNetSpec
from parity.backends import backend_of
from parity.weights import get_weights, keras_key, spec_of, torch_layout


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


@contextlib.contextmanager
def keras_floatx(dtype: str):
    """Build Keras layers and optimizers in `dtype` (everything created inside takes it as default).

    Both settings are needed: layers take the global dtype policy (fixed once first read, whatever
    floatx says later), optimizers and losses take floatx.
    """
    import keras

    old_floatx, old_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(old_floatx)
        keras.config.set_dtype_policy(old_policy)


def training_pair(spec: ResNetSpec, weights: dict, dtype: str = "float64", naive: str | None = None) -> tuple:
    """(torch model, Keras model) of `spec` in `dtype`, both holding `weights`.

    Args:
        spec: the architecture.
        weights: canonical weights for both.
        dtype: "float64" (default: isolates the update rules from fp32 rounding) or "float32".
        naive: build the Keras side as this `parity.naive` port instead (for the lessons).
    """
    import resnet_torch
    from parity.naive import build_naive_keras
    from parity.weights import set_weights

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    torch_model = resnet_torch.ResNet(spec).to(getattr(__import__("torch"), dtype))
    with keras_floatx(dtype):
        if naive is None:
            import resnet_keras

            keras_model = resnet_keras.ResNet(spec)
        else:
            keras_model = build_naive_keras(spec, naive)
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
        (rng.standard_normal((batch, spec.in_channels, height, width)).astype(np.float32),
         rng.integers(0, spec.num_classes, size=batch).astype(np.int64))
        for _ in range(steps)
    ]


def train_torch(model: Any, batches: list, config: SGDConfig) -> TrainTrace:
    import torch

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    names = {id(p): k for k, p in model.named_parameters()}
    trace = TrainTrace()
    for images, labels in batches:
        optimizer.zero_grad()
        logits = model(torch.from_numpy(images).to(next(model.parameters()).dtype))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels))
        loss.backward()
        trace.losses.append(loss.item())
        trace.grads.append({names[id(p)]: p.grad.detach().numpy().copy() for p in model.parameters()})
        optimizer.step()
    model.eval()
    trace.weights = get_weights(model)
    return trace


def train_keras(model: Any, batches: list, config: SGDConfig, decoupled_decay: bool = False) -> TrainTrace:
    """Train a Keras model as `train_torch` trains a torch one.

    Args:
        model: a resnet_keras model.
        batches: from `make_batches` (NCHW; converted here).
        config: SGD hyper-parameters (torch's conventions).
        decoupled_decay: use Keras' own SGD(weight_decay=...) instead: the naive port (a lesson).
    """
    import keras

    decay = config.weight_decay if decoupled_decay else None
    # FRAMEWORK: optimizer precision — Keras keeps the learning rate in a floatx variable (float32
    # would round 0.01 to 0.0099999998), and under TF `ops.cast(0.9, float64)` goes through float32
    # (0.89999998). Both are 2e-8 relative errors, visible in float64 training; a float64 floatx and a
    # numpy float64 momentum keep them exact.
    with keras_floatx(model.compute_dtype):
        optimizer = keras.optimizers.SGD(learning_rate=config.lr, momentum=np.float64(config.momentum),
                                         weight_decay=decay)
    variables = model.trainable_variables
    keys = [keras_key(v.path, model.name) for v in variables]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=model.compute_dtype)
    gradient = _gradient_function(keras.backend.backend())
    trace = TrainTrace()
    for images, labels in batches:
        # FRAMEWORK: layout — the one NCHW -> NHWC conversion, at the Keras model's input.
        x = np.ascontiguousarray(images.transpose(0, 2, 3, 1)).astype(model.compute_dtype)
        loss, grads = gradient(model, loss_fn, x, labels, variables)
        trace.losses.append(float(keras.ops.convert_to_numpy(loss)))
        trace.grads.append({k: torch_layout(np.array(keras.ops.convert_to_numpy(g))) for k, g in zip(keys, grads)})
        if not decoupled_decay:
            grads = [g + config.weight_decay * v.value for g, v in zip(grads, variables)]
        optimizer.apply(grads, variables)
    trace.weights = get_weights(model)
    return trace


def _gradient_function(backend: str):
    """(model, loss_fn, x, y, variables) -> (loss, grads) for the active Keras backend."""
    if backend == "tensorflow":
        import tensorflow as tf

        def gradient(model, loss_fn, x, y, variables):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            return loss, tape.gradient(loss, variables)

        return gradient
    if backend == "torch":
        import torch

        def gradient(model, loss_fn, x, y, variables):
            for v in variables:
                v.value.grad = None
            loss = loss_fn(torch.from_numpy(y), model(torch.from_numpy(x), training=True))
            loss.backward()
            return loss.detach(), [v.value.grad.detach() for v in variables]

        return gradient
    raise NotImplementedError(f"training-step parity runs under the tensorflow and torch Keras backends, "
                              f"not {backend!r}")


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


def worst_tensor(label: str, a: dict[str, np.ndarray], b: dict[str, np.ndarray], keys: list[str],
                 tolerance: float) -> StageDiff:
    """The StageDiff of the tensor (among `keys`) whose relative difference is largest."""
    missing = [k for k in keys if k not in a or k not in b]
    if missing:
        raise KeyError(f"{label}: no value for {', '.join(missing[:5])}")
    diffs = [StageDiff.measure(f"{label}:{k}", a[k], b[k], tolerance) for k in keys]
    return max(diffs, key=lambda d: (not d.passed, d.max_rel if not math.isnan(d.max_rel) else math.inf))


def compare_training(torch_model: Any, keras_model: Any, steps: int = 3, batch: int = 4, height: int = 64,
                     width: int | None = None, seed: int = 0, config: SGDConfig = SGDConfig(),
                     tolerance: float | None = None, decoupled_decay: bool = False) -> TrainReport:
    """Train both models (already holding the same weights) for `steps` SGD steps and compare.

    Args:
        torch_model, keras_model: models of one spec with identical weights.
        steps, batch, height, width: the seeded training batches.
        seed: seeds the batches.
        config: SGD hyper-parameters (torch's conventions).
        tolerance: max relative difference of every compared tensor (default: TRAIN_STEP_FP64 for
            float64 models; float32 models need an explicit one, see `parity.tolerances`).
        decoupled_decay: train the Keras side with Keras' decoupled weight decay (a naive port).
    """
    if backend_of(torch_model) != "torch" or backend_of(keras_model) != "keras":
        raise TypeError("compare_training takes (torch_model, keras_model)")
    spec = spec_of(torch_model)
    if spec_of(keras_model) != spec:
        raise ValueError("the two models have different specs")
    width = height if width is None else width
    dtype = str(next(torch_model.parameters()).dtype).replace("torch.", "")
    if tolerance is None and dtype != "float64":
        raise ValueError(f"no default training tolerance for {dtype} models (fp32 gradients are chaotic at "
                         "ReLU/max-pool kinks, see parity.tolerances.TRAIN_STEP_FP64); pass tolerance=")
    tol = tolerances.TRAIN_STEP_FP64 if tolerance is None else float(tolerance)
    batches = make_batches(spec, steps, batch, height, width, seed)
    start = time.perf_counter()
    ta = train_torch(torch_model, batches, config)
    tb = train_keras(keras_model, batches, config, decoupled_decay)
    trainable = [k for k in spec.canonical_shapes() if not k.endswith(("running_mean", "running_var"))]
    running = [k for k in spec.canonical_shapes() if k.endswith(("running_mean", "running_var"))]
    return TrainReport(
        arch=spec.name,
        steps=steps,
        config={"lr": config.lr, "momentum": config.momentum, "weight_decay": config.weight_decay,
                "batch": batch, "size": [height, width], "seed": seed, "dtype": dtype},
        loss=[StageDiff.measure(f"loss step {i + 1}", np.array(a), np.array(b), tol)
              for i, (a, b) in enumerate(zip(ta.losses, tb.losses))],
        grads=[worst_tensor(f"grad step {i + 1}", ga, gb, trainable, tol)
               for i, (ga, gb) in enumerate(zip(ta.grads, tb.grads))],
        weights=worst_tensor("weights", ta.weights, tb.weights, trainable, tol),
        running=worst_tensor("running", ta.weights, tb.weights, running, tol),
        tolerance=tol,
        seconds=time.perf_counter() - start,
    )
