"""The project's main job: build both backends from one spec, port weights, compare.

`check_arch` is what `resnet-parity check` runs for every architecture; tests call it directly.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from parity.compare import Report, compare
from parity.spec import ResNetSpec, make_spec
from parity.weights import copy_weights, random_weights, set_weights

DIRECTIONS = ("torch2keras", "keras2torch")


@dataclass
class ParamCounts:
    """Trainable parameters and BN running-statistic elements of the spec and both models."""

    spec: int
    torch: int
    keras: int
    bn_running_spec: int
    bn_running_torch: int
    bn_running_keras: int

    @property
    def equal(self) -> bool:
        return self.spec == self.torch == self.keras and (
            self.bn_running_spec == self.bn_running_torch == self.bn_running_keras
        )


@dataclass
class CheckResult:
    """One row of the check table."""

    arch: str
    variant: str
    direction: str
    params: ParamCounts
    output_shape: list[int]
    report: Report
    seconds: float
    onnx_reports: list[Report] = field(default_factory=list)
    onnx_ops: dict[str, dict[str, int]] = field(default_factory=dict)
    train: Any = None  # parity.train.TrainReport when training steps were compared

    @property
    def passed(self) -> bool:
        return (self.params.equal and self.report.passed and all(r.passed for r in self.onnx_reports)
                and (self.train is None or self.train.passed))

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "variant": self.variant,
            "direction": self.direction,
            "params": {**asdict(self.params), "equal": self.params.equal},
            "output_shape": self.output_shape,
            "max_abs": self.report.logits.max_abs,
            "max_rel": self.report.logits.max_rel,
            "first_divergent": self.report.first_divergent,
            "passed": self.passed,
            "seconds": self.seconds,
            "report": self.report.to_dict(),
            "onnx": {
                "reports": [r.to_dict() for r in self.onnx_reports],
                "ops": self.onnx_ops,
            },
            "train": None if self.train is None else self.train.to_dict(),
        }


def torch_counts(model: Any) -> tuple[int, int]:
    """(trainable parameters, BN running-statistic elements) of a torch model."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    running = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return trainable, running


def keras_counts(model: Any) -> tuple[int, int]:
    """(trainable parameters, BN moving-statistic elements) of a built Keras model."""
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    running = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
    return trainable, running


def build_pair(spec: ResNetSpec) -> tuple[Any, Any]:
    """A torch and a Keras model of one spec (both hold their variables from construction)."""
    import resnet_keras
    import resnet_torch

    torch_model = resnet_torch.ResNet(spec)
    keras_model = resnet_keras.ResNet(spec)
    return torch_model, keras_model


def random_input(spec: ResNetSpec, batch: int, height: int, width: int, seed: int) -> np.ndarray:
    """A seeded standard-normal NCHW batch (roughly what a normalised image looks like)."""
    rng = np.random.default_rng(seed + 1_000_003)
    return rng.standard_normal((batch, spec.in_channels, height, width)).astype(np.float32)


def check_arch(
    arch: str,
    batch: int = 2,
    height: int = 224,
    width: int | None = None,
    device: str = "cpu",
    seed: int = 0,
    direction: str = "torch2keras",
    variant: str = "torchvision",
    allow_tf32: bool = False,
    spec: ResNetSpec | None = None,
    onnx: bool = False,
    train_steps: int = 0,
    train_batch: int = 8,
    train_size: int = 64,
) -> CheckResult:
    """Build both models, fill the source with seeded random weights, copy across, compare.

    Args:
        arch: preset name (ignored for building when `spec` is given).
        batch: input batch size.
        height, width: input size (width defaults to height).
        device: "cpu" or "cuda".
        seed: seeds the weights and the input.
        direction: "torch2keras" (torch is the source and reference) or "keras2torch".
        variant: spec variant name.
        allow_tf32: see `parity.compare.compare`.
        spec: a full spec to check instead of the preset.
        onnx: also export both models to ONNX and compare all four on the logits.
        train_steps: also run this many SGD steps in both backends (float64, from the same seeded
            weights) and compare losses, gradients, weights and BN statistics.
        train_batch, train_size: the training batches (seeded like the input).
    """
    width = height if width is None else width
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    spec = spec or make_spec(arch, variant)
    start = time.perf_counter()
    torch_model, keras_model = build_pair(spec)
    src, dst = (torch_model, keras_model) if direction == "torch2keras" else (keras_model, torch_model)
    set_weights(src, random_weights(spec, seed))
    copy_weights(src, dst)
    x = random_input(spec, batch, height, width, seed)
    report = compare(src, dst, x, device=device, allow_tf32=allow_tf32)
    t_params, t_running = torch_counts(torch_model)
    k_params, k_running = keras_counts(keras_model)
    counts = spec.param_counts()
    params = ParamCounts(counts["trainable"], t_params, k_params, counts["bn_running"], t_running, k_running)
    result = CheckResult(spec.name, spec.variant, direction, params, report.logits.shape_b, report, 0.0)
    if onnx:
        from parity.export import four_way

        found = four_way(torch_model, keras_model, x, device=device, allow_tf32=allow_tf32)
        result.onnx_reports = found["reports"]
        result.onnx_ops = {label: dict(ops) for label, ops in found["ops"].items()}
    if train_steps:
        from parity.train import compare_training, training_pair

        torch_train, keras_train = training_pair(spec, random_weights(spec, seed), "float64")
        result.train = compare_training(torch_train, keras_train, steps=train_steps, batch=train_batch,
                                        height=train_size, seed=seed)
    result.seconds = time.perf_counter() - start
    return result
