"""Run two models on the same input and compare their logits and every stage output.

Inputs are given NCHW (PyTorch's layout) and converted once, at the NHWC boundary of a Keras model;
Keras outputs are converted back to NCHW before comparison.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import numpy as np

from parity import tolerances
from parity.weights import backend_of, spec_of

DEVICES = ("cpu", "cuda")


@dataclass
class StageDiff:
    """How far two tensors of one stage are apart.

    `max_rel` is max |a - b| over positions finite in both, divided by max |a| (a = reference).
    NaN/inf positions must match exactly (same mask, same sign of inf) to pass.
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

    @classmethod
    def measure(cls, stage: str, a: np.ndarray, b: np.ndarray, tolerance: float) -> "StageDiff":
        """Compare reference `a` with `b` (any float arrays)."""
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            nan = math.nan
            return cls(stage, list(a.shape), list(b.shape), nan, nan, nan,
                       int(np.isnan(a).sum()), int(np.isnan(b).sum()), 0, 0, tolerance, False)
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        nan_mismatch = int(np.count_nonzero(nan_a != nan_b))
        inf_mismatch = int(np.count_nonzero((a == np.inf) != (b == np.inf)))
        inf_mismatch += int(np.count_nonzero((a == -np.inf) != (b == -np.inf)))
        finite = np.isfinite(a) & np.isfinite(b)
        diff = np.abs(np.where(finite, a, 0.0) - np.where(finite, b, 0.0))
        max_abs = float(diff.max(initial=0.0))
        ref_max = float(np.max(np.abs(a), where=np.isfinite(a), initial=0.0))
        if ref_max > 0:
            max_rel = max_abs / ref_max
        else:
            max_rel = 0.0 if max_abs == 0 else math.inf
        passed = nan_mismatch == 0 and inf_mismatch == 0 and max_rel <= tolerance
        return cls(stage, list(a.shape), list(b.shape), max_abs, ref_max, max_rel,
                   int(nan_a.sum()), int(nan_b.sum()), nan_mismatch, inf_mismatch, tolerance, passed)


@dataclass
class Report:
    """The result of one comparison; `to_json()` carries every figure."""

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

    @property
    def passed(self) -> bool:
        return bool(self.stages) and all(s.passed for s in self.stages)

    @property
    def first_divergent(self) -> str | None:
        """The first stage (stem, layer1, ..., logits) that fails, or None."""
        for s in self.stages:
            if not s.passed:
                return s.stage
        return None

    @property
    def logits(self) -> StageDiff:
        return self.stages[-1]

    def stage(self, name: str) -> StageDiff:
        for s in self.stages:
            if s.stage == name:
                return s
        raise KeyError(f"no stage {name!r} in report; stages: {[s.stage for s in self.stages]}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["first_divergent"] = self.first_divergent
        return data

    def to_json(self, **kwargs: Any) -> str:
        # NaN/inf are not JSON: write them as null so any JSON reader parses the file.
        return json.dumps(json_safe(self.to_dict()), **kwargs)


def fmt_sci(value: float) -> str:
    """A figure for a table: 1.23e-07, or nan."""
    return "nan" if value != value else f"{value:.2e}"


def json_safe(value: Any) -> Any:
    """A copy with NaN and inf floats replaced by None, so strict JSON readers parse it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


@contextlib.contextmanager
def precision(device: str, allow_tf32: bool = False) -> Iterator[bool]:
    """Turn TF32 off (unless allowed) in every loaded framework for the block; yields `tf32 in use`.

    On CPU there is no TF32, so nothing changes and it yields False.
    """
    check_device(device)
    if device == "cpu":
        yield False
        return
    import sys

    restore = []
    torch = sys.modules.get("torch")
    if torch is not None:
        old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        torch.backends.cudnn.allow_tf32 = allow_tf32
        restore.append(lambda: _set_torch_tf32(torch, *old))
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        old_tf = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(allow_tf32)
        restore.append(lambda: tf.config.experimental.enable_tensor_float_32_execution(old_tf))
    jax = sys.modules.get("jax")
    if jax is not None:
        old_jax = jax.config.jax_default_matmul_precision
        jax.config.update("jax_default_matmul_precision", None if allow_tf32 else "highest")
        restore.append(lambda: jax.config.update("jax_default_matmul_precision", old_jax))
    try:
        yield allow_tf32
    finally:
        for undo in reversed(restore):
            undo()


def _set_torch_tf32(torch: Any, matmul: bool, cudnn: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = matmul
    torch.backends.cudnn.allow_tf32 = cudnn


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")


def cuda_available() -> bool:
    """True when torch sees a CUDA device (the only GPU check CI needs: it has none)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def run_stages(model: Any, x: np.ndarray, device: str = "cpu") -> dict[str, np.ndarray]:
    """Inference-mode stage outputs of a model of either backend, as NCHW numpy arrays.

    Args:
        model: a resnet_torch or resnet_keras model.
        x: input batch, NCHW float32.
        device: "cpu" or "cuda".
    """
    check_device(device)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if backend_of(model) == "torch":
        import torch

        model.eval()
        model.to(device)
        dtype = next(model.parameters()).dtype
        with torch.no_grad():
            outputs = model.forward_stages(torch.from_numpy(x).to(device=device, dtype=dtype))
        return {k: v.detach().cpu().numpy() for k, v in outputs.items()}
    import keras

    # FRAMEWORK: layout — the one NCHW -> NHWC conversion, at the Keras model's input.
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).astype(model.compute_dtype)
    with keras.device("gpu:0" if device == "cuda" else "cpu:0"):
        outputs = model.forward_stages(x_nhwc, training=False)
        outputs = {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
    return {k: v.transpose(0, 3, 1, 2) if v.ndim == 4 else v for k, v in outputs.items()}


def compare(
    a: Any,
    b: Any,
    x: np.ndarray,
    device: str = "cpu",
    tolerance: float | None = None,
    allow_tf32: bool = False,
    labels: tuple[str, str] | None = None,
) -> Report:
    """Run `a` (the reference) and `b` in inference mode on `x` and compare every stage.

    Args:
        a: reference model (either backend).
        b: model under test (either backend), same spec.
        x: input batch, NCHW float32 (numpy).
        device: "cpu" or "cuda"; on CUDA, TF32 is off unless `allow_tf32`.
        tolerance: max relative difference per stage; default from `parity.tolerances`.
        allow_tf32: let CUDA matmuls/convs use TF32 (and the looser TF32 tolerance).
        labels: names for the two models in the report (default: their backends).
    """
    spec = spec_of(a)
    if spec_of(b) != spec:
        raise ValueError(f"the two models have different specs:\n  a: {spec}\n  b: {spec_of(b)}")
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != spec.in_channels:
        raise ValueError(
            f"x must be NCHW with {spec.in_channels} channels, got shape {tuple(x.shape)}"
        )
    name, tol = tolerances.for_run(device, allow_tf32)
    if tolerance is not None:
        name, tol = "custom", float(tolerance)
    start = time.perf_counter()
    with precision(device, allow_tf32) as tf32:
        out_a = run_stages(a, x, device)
        out_b = run_stages(b, x, device)
    report = Report(
        a=labels[0] if labels else backend_of(a),
        b=labels[1] if labels else backend_of(b),
        arch=spec.name,
        input_shape=list(x.shape),
        device=device,
        tf32=tf32,
        tolerance=tol,
        tolerance_name=name,
    )
    for stage in spec.stage_names:
        report.stages.append(StageDiff.measure(stage, out_a[stage], out_b[stage], tol))
    report.seconds = time.perf_counter() - start
    return report
