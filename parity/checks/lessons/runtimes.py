"""The runtime lessons: what a deployment runtime changes, as a user meets it (the runtime's default, what a user
writes) beside what this project does, each measured against the torch model in the same run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from parity.backends import adapter_named
from parity.backends.runtimes import missing, runtime_named
from parity.checks.compare import run_stages
from parity.checks.diff import StageDiff
from parity.checks.lessons.base import LESSONS, Context, Finding, Measure, finding
from parity.checks.runtimes import Route
from parity.core import tolerances
from parity.core.errors import one_line
from parity.core.logs import quiet_imports


def _drift(ctx: Context, x: np.ndarray, out: np.ndarray, note: str = "") -> Measure:
    """A runtime's output against the torch model's fp32 output on `x` (FP32_CPU, like the other fp32 lessons)."""
    reference = run_stages(ctx.torch_model, x)[ctx.spec.output_name]
    return Measure.of_diff(StageDiff.measure(ctx.spec.output_name, reference, out, tolerances.FP32_CPU), note)


def unavailable(ctx: Context, key: str, case: str, runtime: str) -> list[Finding] | None:
    line = missing(runtime)
    if line is None:
        return None
    return [finding(ctx, LESSONS[key], case, None, Measure(0, 0, None), skipped=line)]


def run_openvino_precision(ctx: Context) -> list[Finding]:
    """OpenVINO at its CPU plugin's default precision, and asked for f32, on the same IR."""
    lesson = LESSONS["openvino_precision"]
    skipped = unavailable(ctx, lesson.key, "the CPU plugin's default precision", "openvino")
    if skipped:
        return skipped
    way = Route(runtime_named("openvino"), ctx.torch_model, via_onnx=False)
    x = ctx.x(batch=2)
    with tempfile.TemporaryDirectory() as folder:
        path = way.export(ctx.torch_model, Path(folder), x.shape, unit=False)
        default, asked = way.load(path, None), way.load(path, "fp32")
        naive = _drift(ctx, x, way.run(default, x), default.evidence)
        correct = _drift(ctx, x, way.run(asked, x), asked.evidence)
    case = f"its default on this CPU ({default.precision}) vs INFERENCE_PRECISION_HINT=f32"
    return [finding(ctx, lesson, case, naive, correct)]


def run_litert_batch(ctx: Context) -> list[Finding]:
    """A Keras model exported to LiteRT as a user writes it (called once on one image, no signature), run at batch 3."""
    lesson = LESSONS["litert_batch"]
    case = "Keras export(format='litert') after one call at batch 1, run at batch 3"
    skipped = unavailable(ctx, lesson.key, case, "litert")
    if skipped:
        return skipped
    runtime = runtime_named("litert")
    x = ctx.x(batch=3)
    side = adapter_named("keras")
    side.predict_logits(ctx.keras_model, x[:1])  # the user's first call (`predict_on_batch`), at batch 1
    measures = []
    with tempfile.TemporaryDirectory() as folder:
        for name, shape in (("default", None), ("ours", x.shape)):
            path = Path(folder) / f"{name}.tflite"
            nhwc_shape = None if shape is None else (shape[0], shape[2], shape[3], shape[1])
            with quiet_imports():
                side.export_format(ctx.keras_model, "litert", path, nhwc_shape, True)
            session = runtime.load(path, "fp32")
            way = Route(runtime, ctx.keras_model, via_onnx=False)
            try:
                measures.append(_drift(ctx, x, way.run(session, x), "runs at batch 3"))
            except Exception as exc:  # a graph fixed to batch 1 refuses batch 3 here
                measures.append(Measure(np.nan, np.inf, "batch 3", {}, f"refused: {one_line(exc, 120)}"))
    return [finding(ctx, lesson, case, measures[0], measures[1])]


def run_aoti_range(ctx: Context) -> list[Finding]:
    """AOTInductor packages exported where layer4's map is 1x1 and where it is 2x2, run at a larger odd size."""
    lesson = LESSONS["aoti_range"]
    small = ctx.spec.total_stride  # layer4 sees a 1x1 map: torch.export bounds height and width at this size
    size = max(2 * small, ctx.size) + 1
    case = f"exported at {small}x{small} (layer4 1x1) vs at {size - 1}x{size - 1}, run at {size}x{size}"
    skipped = unavailable(ctx, lesson.key, case, "aoti")
    if skipped:
        return skipped
    way = Route(runtime_named("aoti"), ctx.torch_model, via_onnx=False)
    x = ctx.x(size=size)
    measures = []
    with tempfile.TemporaryDirectory() as folder:
        for name, at in (("small", small), ("ours", size - 1)):
            place = Path(folder) / name
            place.mkdir()
            session = way.load(way.export(ctx.torch_model, place, (1, x.shape[1], at, at), unit=False), "fp32")
            measures.append(_drift(ctx, x, way.run(session, x), "ran without an error"))
    return [finding(ctx, lesson, case, measures[0], measures[1])]
