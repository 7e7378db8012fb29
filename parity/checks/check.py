"""The project's main job: build both backends from one spec, port weights, compare.

`check_arch` is what `resnet-parity check` runs for every architecture; tests call it directly.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from parity.backends import adapter, adapter_named
from parity.checks.compare import compare
from parity.checks.diff import Report
from parity.io.inputs import random_input
from parity.io.photos import CALIBRATION, JUDGED, LICENCE, photo_inputs
from parity.io.weights import calibrate_weights, copy_weights, random_weights, set_weights
from parity.spec import ResNetSpec, layout_name

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
    conventions: dict = field(default_factory=dict)  # {"spec": param_counts(), "torch": ..., "keras": ...}

    @property
    def equal(self) -> bool:
        framework = all(
            self.conventions.get(side, {}).get(k) == self.conventions["spec"][k]
            for side in ("torch", "keras")
            for k in self.conventions.get(side, {})
        )
        return (
            self.spec == self.torch == self.keras
            and (self.bn_running_spec == self.bn_running_torch == self.bn_running_keras)
            and (not self.conventions or framework)
        )

    def line(self) -> str:
        """Both frameworks' totals, said as each framework says them."""
        c = self.conventions.get("spec")
        if not c:
            return ""
        return (
            f"Keras summary(): total {c['keras_total']:,} = trainable {c['keras_trainable']:,} + non-trainable "
            f"{c['keras_non_trainable']:,}; PyTorch: parameters() {c['torch_parameters']:,}, buffers() "
            f"{c['torch_buffers']:,}"
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
    runtimes: list[Any] = field(default_factory=list)  # parity.checks.runtimes.RuntimeRow, one per (model, runtime)
    train: Any = None  # parity.checks.train_steps.TrainReport when training steps were compared
    precision: Any = None  # parity.checks.precision.PrecisionReport with --precision bf16|fp16|int8
    layout: str = ""  # how reports name its layout (`parity.spec.layout_name`: 'timm' for resnet50d)

    @property
    def onnx_ops(self) -> dict[str, dict[str, int]]:
        """Op counts of each ONNX graph the runtimes ran ({'torch': ..., 'keras': ...})."""
        return {r.source: r.ops for r in self.runtimes if r.ops}

    @property
    def passed(self) -> bool:
        return (
            self.params.equal
            and self.report.passed
            and all(r.passed for r in self.runtimes)
            and (self.train is None or self.train.passed)
            and (self.precision is None or self.precision.passed)
        )

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
            "runtimes": [r.to_dict() for r in self.runtimes],
            "train": None if self.train is None else self.train.to_dict(),
            "precision": None if self.precision is None else self.precision.to_dict(),
        }


def build_pair(spec: ResNetSpec) -> tuple[Any, Any]:
    """A torch and a Keras model of one spec (both hold their variables from construction)."""
    return adapter_named("torch").build(spec), adapter_named("keras").build(spec)


@functools.lru_cache(maxsize=4)
def _calibrated(spec: ResNetSpec, seed: int, height: int, width: int, data: str) -> dict[str, np.ndarray]:
    if data == "photos":
        images = photo_inputs(spec, CALIBRATION, height, width)
        return calibrate_weights(spec, random_weights(spec, seed), seed, (height, width), images=images)
    return random_weights(spec, seed, calibrate=True, size=(height, width))


def default_weights(
    spec: ResNetSpec, seed: int, height: int, width: int, calibrate: bool = True, data: str = "noise"
) -> dict:
    """`check`'s weights: seeded, BN statistics calibrated at the input size on seeded noise or, with `data`
    'photos', on the calibration photographs (`parity.io.photos`); cached per spec/seed/size/data."""
    if not calibrate:
        return random_weights(spec, seed)
    return {k: v.copy() for k, v in _calibrated(spec, seed, height, width, data).items()}


@dataclass(frozen=True)
class CheckConfig:
    """How one network is checked (`check_arch`; `resnet-parity check` builds it from its options).

    Args:
        batch: input batch size (of the seeded input).
        height, width: input size (width defaults to height).
        device: "cpu" or "cuda".
        seed: seeds the weights and the input.
        direction: "torch2keras" (torch is the source and reference) or "keras2torch".
        allow_tf32: see `parity.checks.compare.compare`.
        runtimes: carry both models to these deployment runtimes (`parity.backends.runtimes.RUNTIME_NAMES`) and
            judge each against the float64 truth (`parity.checks.runtimes`).
        train_steps: also run this many SGD steps in both backends (float64, from the same weights) and
            compare losses, gradients, weights and BN statistics.
        train_batch, train_size: the training batches (seeded like the input).
        calibrate: calibrate the seeded weights' BN statistics (ignored when weights are given).
        float64: run the float64 pass (the port verdict); see `parity.checks.compare.compare`.
        precision: also judge both models in 'bf16', 'fp16' or 'int8' (`parity.checks.precision`), in each
            framework and on `runtimes` (which then run in that precision only).
        data: 'photos' or 'noise': what seeded weights' BN is calibrated on, what int8 is calibrated on and what the
            models are compared on (default: photos with a low precision, noise in fp32).
    """

    batch: int = 2
    height: int = 224
    width: int | None = None
    device: str = "cpu"
    seed: int = 0
    direction: str = "torch2keras"
    allow_tf32: bool = False
    runtimes: tuple[str, ...] = ()
    train_steps: int = 0
    train_batch: int = 8
    train_size: int = 64
    calibrate: bool = True
    float64: bool = True
    precision: str = "fp32"
    data: str | None = None

    @property
    def data_kind(self) -> str:
        return self.data or ("noise" if self.precision == "fp32" else "photos")

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")


def check_arch(
    spec: ResNetSpec,
    config: CheckConfig | None = None,
    weights: dict[str, np.ndarray] | None = None,
    x: np.ndarray | None = None,
    source: Any = None,
    progress: Any = None,
) -> CheckResult:
    """Build both models of `spec`, fill the source with weights, copy across, compare.

    Args:
        spec: the network (`parity.spec.make_spec`, or read from a file).
        config: how to check it (default `CheckConfig()`).
        weights: canonical weights to check (e.g. a user's checkpoint); default seeded random
            weights with calibrated BN statistics (`default_weights`).
        x: NCHW input to compare on (e.g. a user's images); default a seeded standard-normal batch.
        source: the `parity.checks.live.Proof` of the user's own model these weights and spec were read from: the
            user's model is the reference, the port is judged against it (its backend is the direction's source).
        progress: called with a few words as each runtime row starts (`config.runtimes`).
    """
    config = config or CheckConfig()
    given = x is not None
    device, seed, direction = config.device, config.seed, config.direction
    height = config.height
    width = height if config.width is None else config.width
    start = time.perf_counter()
    photos = config.data_kind == "photos"
    if x is None:
        x = photo_inputs(spec, JUDGED, height, width, config.batch) if photos else None
        x = random_input(spec, config.batch, height, width, seed) if x is None else x
    if weights is None:
        weights = default_weights(spec, seed, x.shape[2], x.shape[3], config.calibrate, config.data_kind)
    torch_model, keras_model = build_pair(spec)
    src, dst = (torch_model, keras_model) if direction == "torch2keras" else (keras_model, torch_model)
    set_weights(src, weights)
    copy_weights(src, dst)
    report = compare(
        src if source is None else source,
        dst,
        x,
        device=device,
        allow_tf32=config.allow_tf32,
        float64=config.float64,
        seed=seed,
    )
    torch_side, keras_side = adapter(torch_model), adapter(keras_model)
    t_params, t_running = torch_side.count_params(torch_model)
    k_params, k_running = keras_side.count_params(keras_model)
    counts = spec.param_counts()
    conventions = {
        "spec": counts,
        "torch": torch_side.framework_counts(torch_model),
        "keras": keras_side.framework_counts(keras_model),
    }
    params = ParamCounts(
        counts["trainable"], t_params, k_params, counts["bn_running"], t_running, k_running, conventions
    )
    result = CheckResult(spec.name, spec.variant, direction, params, report.logits.shape_b, report, 0.0)
    result.layout = layout_name(spec)
    if config.precision != "fp32":
        result.precision = _low_precision(config, src, [torch_model, keras_model], x, given, progress)
    elif config.runtimes:
        from parity.checks.runtimes import runtime_rows

        result.runtimes = runtime_rows(list(config.runtimes), src, [torch_model, keras_model], x, progress)
    if config.train_steps:
        from parity.checks.train_steps import compare_training, training_pair

        torch_train, keras_train = training_pair(spec, weights, "float64")
        result.train = compare_training(
            torch_train,
            keras_train,
            steps=config.train_steps,
            batch=config.train_batch,
            height=config.train_size,
            seed=seed,
        )
    result.seconds = time.perf_counter() - start
    return result


def _low_precision(config: CheckConfig, reference: Any, models: list, x: np.ndarray, given: bool, progress: Any) -> Any:
    """Both models in `config.precision`, judged on the user's input, or on the judged photographs (or seeded noise)."""
    from parity.checks.precision import precision_rows

    spec, (height, width) = reference.spec, x.shape[2:]
    if config.data_kind == "photos":
        calibration = photo_inputs(spec, CALIBRATION, height, width)
        judged = x if given else photo_inputs(spec, JUDGED, height, width)
        data = "your input" if given else f"{len(judged)} photographs ({LICENCE})"
    else:
        calibration = random_input(spec, JUDGED[1], height, width, config.seed + 1)
        judged = x if given else random_input(spec, JUDGED[1], height, width, config.seed)
        data = "your input" if given else f"{len(judged)} seeded noise images"
    from parity.checks.engines import FRAMEWORK_PRECISIONS

    own = config.precision in FRAMEWORK_PRECISIONS or not config.runtimes  # int8 on frameworks: said, with --runtime
    engines = ["frameworks"] * own + list(config.runtimes)
    return precision_rows(config.precision, reference, models, judged, calibration, engines, data, progress)


def check_input_size(specs: Sequence[ResNetSpec], batch: int, height: int, width: int, copies: int) -> None:
    """Refuse an input smaller than the networks downsample by, or one whose activations would not fit in the
    memory this machine has available (`copies`: how many float64 copies of every activation a run holds)."""
    for spec in specs:
        if min(height, width) < spec.total_stride:
            raise ValueError(
                f"--size {height}x{width}: {spec.name} downsamples by {spec.total_stride} (stem and stage strides), "
                f"so a stride-2 layer would see a 1-pixel map; use --size {spec.total_stride} or more"
            )
    from parity.core.threads import available_memory

    needed = max(spec.activation_elements(height, width) for spec in specs) * batch * 8 * copies
    free = available_memory()
    if free and needed > free:
        raise ValueError(
            f"--size {height}x{width} --batch {batch}: the activations alone need about {needed / 1e9:.3g} GB "
            f"(float64, {copies} copies), more than the {free / 1e9:.3g} GB this machine has available; "
            "use a smaller --size or --batch"
        )
