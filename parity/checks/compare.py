"""Run two models on the same input and compare their logits and every stage output.

Inputs are given NCHW (PyTorch's layout) and converted once, at the NHWC boundary of a Keras model;
Keras outputs are converted back to NCHW before comparison.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from parity.backends import adapter, adapter_named, loaded_backends, spec_of
from parity.core import tolerances
from parity.core.formatting import json_safe
from parity.spec import ResNetSpec

DEVICES = ("cpu", "cuda")


@dataclass
class StageDiff:
    """How far two tensors of one stage (or block, or layer) are apart.

    `max_rel` is max |a - b| over positions finite in both, divided by max |a| (a = reference).
    NaN/inf positions must match exactly (same mask, same sign of inf) to pass. For fp32 stages,
    `noise` is the reference's own fp32 rounding there (its fp32 output against its float64 output,
    same measure) and `ratio` = max_rel / noise; the tolerance is then a multiple of that noise.
    """

    stage: str
    shape_a: list[int]
    shape_b: list[int]
    max_abs: float
    ref_max: float
    max_rel: float
    nan_a: int
    nan_b: int
    nan_mismatch: int
    inf_mismatch: int
    tolerance: float
    passed: bool
    noise: float | None = None
    noise_b: float | None = None
    ratio: float | None = None

    @classmethod
    def measure(cls, stage: str, a: np.ndarray, b: np.ndarray, tolerance: float, floor: float = 0.0) -> StageDiff:
        """Compare reference `a` with `b` (any float arrays); `floor` is the least scale the difference is
        divided by (for a tensor that is zero up to rounding, the scale of its neighbours)."""
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            nan = math.nan
            return cls(
                stage,
                list(a.shape),
                list(b.shape),
                nan,
                nan,
                nan,
                int(np.isnan(a).sum()),
                int(np.isnan(b).sum()),
                0,
                0,
                tolerance,
                False,
            )
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        nan_mismatch = int(np.count_nonzero(nan_a != nan_b))
        inf_mismatch = int(np.count_nonzero((a == np.inf) != (b == np.inf)))
        inf_mismatch += int(np.count_nonzero((a == -np.inf) != (b == -np.inf)))
        finite = np.isfinite(a) & np.isfinite(b)
        diff = np.abs(np.where(finite, a, 0.0) - np.where(finite, b, 0.0))
        max_abs = float(diff.max(initial=0.0))
        ref_max = max(float(np.max(np.abs(a), where=np.isfinite(a), initial=0.0)), floor)
        if ref_max > 0:
            max_rel = max_abs / ref_max
        else:
            max_rel = 0.0 if max_abs == 0 else math.inf
        passed = nan_mismatch == 0 and inf_mismatch == 0 and max_rel <= tolerance
        return cls(
            stage,
            list(a.shape),
            list(b.shape),
            max_abs,
            ref_max,
            max_rel,
            int(nan_a.sum()),
            int(nan_b.sum()),
            nan_mismatch,
            inf_mismatch,
            tolerance,
            passed,
        )

    @classmethod
    def against_noise(
        cls,
        stage: str,
        a32: np.ndarray,
        b32: np.ndarray,
        a64: np.ndarray,
        b64: np.ndarray,
        multiple: float,
        floor: float,
    ) -> StageDiff:
        """fp32 a vs fp32 b, passing within `multiple` x a's own fp32 noise (never below `floor`)."""
        noise = cls.measure(stage, a64, a32, math.inf).max_rel
        noise_b = cls.measure(stage, b64, b32, math.inf).max_rel
        tolerance = max(multiple * noise, floor) if math.isfinite(noise) else floor
        diff = cls.measure(stage, a32, b32, tolerance)
        diff.noise, diff.noise_b = noise, noise_b
        diff.ratio = diff.max_rel / noise if noise > 0 else (0.0 if diff.max_rel == 0 else math.inf)
        return diff


@dataclass
class Report:
    """The result of one comparison; `str(report)` is a readable table, `to_json()` every figure.

    Two verdicts make `passed`:
    - port: both models in float64 on the same weights and input agree within `tolerances.FP64`,
      stage by stage end to end and unit by unit in isolation (`float64_stages`, `blocks`). Rounding
      (about 1e-12 at most, measured) cannot hide or fake a difference at 1e-10.
    - fp32: each fp32 stage of b is within `tolerances.FP32_NOISE_MULTIPLE` x a's own fp32 rounding
      (its fp32 output against its float64 one), never below the floor `tolerances.FP32_FLOOR`.
    Without the float64 pass (`float64=False`), fixed fp32 tolerances decide both (`float64_note` says so).
    """

    a: str
    b: str
    arch: str
    input_shape: list[int]
    device: str
    tf32: bool
    tolerance: float
    tolerance_name: str
    stages: list[StageDiff] = field(default_factory=list)
    seconds: float = 0.0
    float64: bool = False
    float64_note: str = ""
    float64_seconds: float = 0.0
    float64_stages: list[StageDiff] = field(default_factory=list)
    blocks: list[StageDiff] = field(default_factory=list)
    blocks_dtype: str = ""
    layers: list[StageDiff] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def port_passed(self) -> bool:
        """The port verdict: float64 stages and every isolated unit (fp32 ones without float64)."""
        return all(s.passed for s in self.float64_stages) and all(s.passed for s in self.blocks)

    @property
    def fp32_passed(self) -> bool:
        return bool(self.stages) and all(s.passed for s in self.stages)

    @property
    def passed(self) -> bool:
        return self.port_passed and self.fp32_passed

    @property
    def first_divergent(self) -> str | None:
        """The first stage (stem, layer1, ..., logits) failing in float64 or fp32, or None."""
        failing = {s.stage for s in self.stages + self.float64_stages if not s.passed}
        for s in self.stages:
            if s.stage in failing:
                return s.stage
        return None

    @property
    def first_wrong_block(self) -> str | None:
        """The first unit (stem, layer3.4, head) that fails on the reference's input to it."""
        return next((s.stage for s in self.blocks if not s.passed), None)

    @property
    def first_wrong_layer(self) -> str | None:
        """Inside the first wrong unit, the first layer that fails on the reference's input to it."""
        return next((s.stage for s in self.layers if not s.passed), None)

    @property
    def first_wrong(self) -> str | None:
        """The most precise place named: the first wrong layer, else block, else stage."""
        return self.first_wrong_layer or self.first_wrong_block or self.first_divergent

    @property
    def port_max_rel(self) -> float:
        """The worst float64 difference, end to end or unit alone (NaN without the float64 pass)."""
        if not self.float64:
            return math.nan
        return max((s.max_rel for s in self.float64_stages + self.blocks), default=math.nan)

    @property
    def logits(self) -> StageDiff:
        return self.stages[-1]

    @property
    def worst_ratio(self) -> float:
        """The largest fp32 difference in units of the reference's fp32 noise."""
        return max((s.ratio for s in self.stages if s.ratio is not None), default=math.nan)

    def stage(self, name: str) -> StageDiff:
        for s in self.stages:
            if s.stage == name:
                return s
        raise KeyError(f"no stage {name!r} in report; stages: {[s.stage for s in self.stages]}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            passed=self.passed,
            port_passed=self.port_passed,
            fp32_passed=self.fp32_passed,
            first_divergent=self.first_divergent,
            first_wrong_block=self.first_wrong_block,
            first_wrong_layer=self.first_wrong_layer,
        )
        return data

    def to_json(self, **kwargs: Any) -> str:
        # NaN/inf are not JSON: write them as null so any JSON reader parses the file.
        return json.dumps(json_safe(self.to_dict()), **kwargs)

    def __str__(self) -> str:
        from parity.checks.report import report_text

        return report_text(self)


@contextlib.contextmanager
def precision(device: str, allow_tf32: bool = False) -> Iterator[bool]:
    """Turn TF32 off (unless allowed) in every loaded framework for the block; yields `tf32 in use`.

    On CPU there is no TF32, so nothing changes and it yields False.
    """
    check_device(device)
    if device == "cpu":
        yield False
        return
    with contextlib.ExitStack() as stack:
        for name in loaded_backends():
            stack.enter_context(adapter_named(name).tf32(allow_tf32))
        yield allow_tf32


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")


def cuda_available() -> bool:
    """True when torch sees a CUDA device (the only GPU check CI needs: it has none)."""
    try:
        return adapter_named("torch").cuda_available()
    except ImportError:
        return False


def run_stages(model: Any, x: np.ndarray, device: str = "cpu") -> dict[str, np.ndarray]:
    """Inference-mode stage outputs of a model of either backend, as NCHW numpy arrays.

    Args:
        model: a resnet_torch or resnet_keras model.
        x: input batch, NCHW float32.
        device: "cpu" or "cuda".
    """
    check_device(device)
    x = np.ascontiguousarray(x, dtype=np.float32)
    return adapter(model).run_stages(model, x, device)


def _check_pair(a: Any, b: Any, x: np.ndarray) -> ResNetSpec:
    spec = spec_of(a)
    if spec_of(b) != spec:
        raise ValueError(f"the two models have different specs:\n  a: {spec}\n  b: {spec_of(b)}")
    if x.ndim != 4 or x.shape[1] != spec.in_channels:
        raise ValueError(f"x must be NCHW with {spec.in_channels} channels, got shape {tuple(x.shape)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be a float array (a normalised image batch), got dtype {x.dtype}")
    return spec


def compare(
    a: Any,
    b: Any,
    x: np.ndarray,
    device: str = "cpu",
    tolerance: float | None = None,
    allow_tf32: bool = False,
    labels: tuple[str, str] | None = None,
    float64: bool = True,
    seed: int | None = None,
) -> Report:
    """Run `a` (the reference) and `b` on `x` and judge the port and the fp32 agreement.

    fp32: both models as they are, every stage compared. float64 (unless `float64=False`): both
    models again in float64 on the same weights (torch: a float64 copy; Keras: the same model under
    a float64 compute policy), every stage end to end, then every unit of `b` on `a`'s input to it;
    inside the first unit that fails, every layer alone. See `Report` for the verdicts.

    Args:
        a: reference model (either backend).
        b: model under test (either backend), same spec.
        x: input batch, NCHW float (numpy).
        device: "cpu" or "cuda"; on CUDA, TF32 is off unless `allow_tf32`.
        tolerance: a fixed max relative difference per fp32 stage instead of the noise-aware one.
        allow_tf32: let CUDA matmuls/convs use TF32 (the float64 pass then judges the port alone;
            the fp32 stages get the fixed TF32 tolerance).
        labels: names for the two models in the report (default: their backends).
        float64: run the float64 pass (default); off, fixed fp32 tolerances decide.
        seed: recorded in the report's provenance when weights/input were seeded.
    """
    from parity.checks import localise
    from parity.core import provenance

    x = np.asarray(x)
    spec = _check_pair(a, b, x)
    name, tol = tolerances.for_run(device, allow_tf32, spec.name, spec.depth)
    fixed = tolerance is not None or allow_tf32
    if tolerance is not None:
        name, tol = "custom", float(tolerance)
    side_a, side_b = adapter(a), adapter(b)
    start = time.perf_counter()
    with precision(device, allow_tf32) as tf32:
        out_a = run_stages(a, x, device)
        out_b = run_stages(b, x, device)
        report = Report(
            a=labels[0] if labels else side_a.NAME,
            b=labels[1] if labels else side_b.NAME,
            arch=spec.name,
            input_shape=list(x.shape),
            device=device,
            tf32=tf32,
            tolerance=tol,
            tolerance_name=name,
            provenance=provenance.collect(device, "float32", tf32, seed, side_a.device_name(device)),
        )
        if not float64:
            report.float64_note = (
                "float64 pass off: fixed fp32 tolerances decide ("
                + f"{name}={tol:.0e} per stage, FP32_UNIT={tolerances.FP32_UNIT:.0e} per unit)"
            )
            report.stages = [StageDiff.measure(s, out_a[s], out_b[s], tol) for s in spec.stage_names]
            _localise(report, spec, side_a, a, side_b, b, x, device, tolerances.FP32_UNIT, "float32")
        else:
            f64_start = time.perf_counter()
            with side_a.float64(a) as a64, side_b.float64(b) as b64:
                trace = localise.trace_units(
                    spec, lambda unit, inp: side_a.run_unit(a64, unit, inp, device), x.astype(np.float64)
                )
                ref64 = localise.stage_outputs(spec, trace)
                test64 = side_b.run_stages(b64, x.astype(np.float64), device)
                report.float64 = True
                report.float64_stages = [
                    StageDiff.measure(s, ref64[s], test64[s], tolerances.FP64) for s in spec.stage_names
                ]
                _localise(report, spec, side_a, a64, side_b, b64, x, device, tolerances.FP64, "float64", trace)
            report.float64_seconds = time.perf_counter() - f64_start
            if fixed:
                report.stages = [StageDiff.measure(s, out_a[s], out_b[s], tol) for s in spec.stage_names]
                report.float64_note = f"fp32 stages against the fixed {name}={tol:.0e}"
            else:
                report.tolerance_name = "FP32_NOISE_MULTIPLE"
                report.tolerance = tolerances.FP32_NOISE_MULTIPLE
                report.stages = [
                    StageDiff.against_noise(
                        s,
                        out_a[s],
                        out_b[s],
                        ref64[s],
                        test64[s],
                        tolerances.FP32_NOISE_MULTIPLE,
                        tolerances.FP32_FLOOR,
                    )
                    for s in spec.stage_names
                ]
    report.seconds = time.perf_counter() - start
    return report


def _localise(
    report: Report,
    spec: ResNetSpec,
    side_a: Any,
    a: Any,
    side_b: Any,
    b: Any,
    x: np.ndarray,
    device: str,
    tol: float,
    dtype: str,
    trace: list | None = None,
) -> None:
    """Fill report.blocks (every unit of b on a's input) and report.layers (inside the first wrong one)."""
    from parity.checks import localise

    x = x.astype(dtype)
    if trace is None:
        trace = localise.trace_units(spec, lambda unit, inp: side_a.run_unit(a, unit, inp, device), x)
    report.blocks_dtype = dtype
    report.blocks = [
        StageDiff.measure(unit, out, side_b.run_unit(b, unit, inp, device), tol) for unit, inp, out in trace
    ]
    wrong = report.first_wrong_block
    if wrong is None:
        return
    inputs = {unit: inp for unit, inp, _ in trace}
    steps = localise.trace_layers(spec, lambda layer, inp: side_a.run_unit(a, layer, inp, device), wrong, inputs[wrong])
    report.layers = [
        StageDiff.measure(layer, out, side_b.run_unit(b, layer, inp, device), tol) for layer, inp, out in steps
    ]
