"""The precision lessons: what a low precision does to a network, as a user meets it (the default, what a user
writes) beside the handled way, each judged against the float64 truth on the photographs (`parity.io.photos`), on a
network whose BatchNorm is calibrated on them. A lesson is caught when the naive way's error is more than
`LOW_PRECISION_MULTIPLE` times the handled way's."""

from __future__ import annotations

import copy
import functools
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter, adapter_named
from parity.backends.runtimes import missing, runtime_named
from parity.checks.check import build_pair, default_weights
from parity.checks.engines import Engine
from parity.checks.lessons.base import LESSONS, Context, Finding, Measure, finding
from parity.checks.lessons.runtimes import unavailable
from parity.checks.precision import fp16_overflow, max_relative
from parity.checks.runtimes import Route
from parity.core import tolerances
from parity.core.logs import quiet_imports
from parity.io.photos import CALIBRATION, JUDGED, photo_inputs
from parity.io.weights import copy_weights, set_weights

IMAGES = 8
"""Photographs judged (and int8-calibrated on) per lesson."""


@functools.lru_cache(maxsize=2)
def _weights(ctx_key: tuple) -> dict[str, np.ndarray]:
    spec, size, seed = ctx_key
    return default_weights(spec, seed, size, size, data="photos")


def _pair(ctx: Context, change: Callable[[dict], None] | None = None) -> tuple[Any, Any, dict]:
    """A torch and a Keras model of the lessons' network with BN calibrated on the photographs (`change`d)."""
    values = {k: v.copy() for k, v in _weights((ctx.spec, ctx.size, ctx.seed)).items()}
    if change:
        change(values)
    torch_model, keras_model = build_pair(ctx.spec)
    set_weights(torch_model, values)
    copy_weights(torch_model, keras_model)
    return torch_model, keras_model, values


def _x(ctx: Context, which: tuple[int, int] = JUDGED) -> np.ndarray:
    return photo_inputs(ctx.spec, which, ctx.size, ctx.size, IMAGES)


def _truth(model: Any, x: np.ndarray) -> np.ndarray:
    side = adapter(model)
    with side.float64(model) as model64:
        return side.run_stages(model64, x.astype(np.float64))[model.spec.output_name]


def _measure(out: np.ndarray, truth: np.ndarray, note: str = "") -> Measure:
    """Max relative error at the logits against the float64 truth (inf where the output is not finite)."""
    relative = max_relative(out, truth)
    first = None if math.isfinite(relative) else "logits"
    return Measure(relative * float(np.max(np.abs(truth))), relative, first, {}, note, metric="vs float64")


def _row(ctx: Context, key: str, case: str, naive: Measure, correct: Measure) -> Finding:
    """A row caught when the naive way's error is beyond the multiple of the handled way's."""
    return finding(ctx, LESSONS[key], case, naive, correct, tolerances.LOW_PRECISION_MULTIPLE * correct.max_rel)


def _in(model: Any, precision: str, x: np.ndarray) -> np.ndarray:
    return Engine(precision, model).runner(model, x.shape, [], Path(tempfile.gettempdir()))(x)


def _overflowing(values: dict) -> None:
    """The same float function with layer3.0.conv1 20,000x larger and its BatchNorm undoing it: a checkpoint whose
    activations leave fp16's range (BN statistics absorb any scale a training run gives a conv)."""
    values["layer3.0.conv1.weight"] *= 2e4
    values["layer3.0.bn1.running_mean"] *= 2e4
    values["layer3.0.bn1.running_var"] *= 4e8


def run_fp16_overflow(ctx: Context) -> list[Finding]:
    """fp16 on a network whose layer3.0.conv1 reaches 84,562: autocast fp16 vs bf16, and vs onnxruntime's fp16 graph."""
    torch_model, _, _ = _pair(ctx, _overflowing)
    x = _x(ctx)
    truth = _truth(torch_model, x)
    layer, value = fp16_overflow(torch_model, x)
    naive = _measure(_in(torch_model, "fp16", x), truth, f"{layer} reaches {value:,.0f} > 65,504")
    rows = [
        _row(
            ctx,
            "fp16_overflow",
            "torch autocast fp16 vs bf16 (fp32's range)",
            naive,
            _measure(_in(torch_model, "bf16", x), truth),
        )
    ]
    if missing("onnxruntime") is None:
        with tempfile.TemporaryDirectory() as folder:
            runner = Engine("fp16", torch_model, runtime_named("onnxruntime")).runner(
                torch_model, x.shape, [], Path(folder)
            )
            folded = _measure(runner(x), truth, "BatchNorm folded into the conv: the large sum never exists")
        rows.append(_row(ctx, "fp16_overflow", "torch autocast fp16 vs onnxruntime's fp16 graph", naive, folded))
    return rows


def run_bn_bf16(ctx: Context) -> list[Finding]:
    """The model cast to bf16 (BatchNorm's statistics and parameters rounded too) vs bf16 compute over fp32 weights."""
    torch_model, keras_model, values = _pair(ctx)
    x = _x(ctx)
    truth = _truth(torch_model, x)
    rows = []
    for backend, model, pure, mixed in (
        ("torch", torch_model, "model.to(torch.bfloat16)", "torch.autocast(bf16)"),
        ("keras", keras_model, "dtype policy 'bfloat16'", "policy 'mixed_bfloat16'"),
    ):
        side = adapter_named(backend)
        cast = side.build(ctx.spec, "bfloat16")
        set_weights(cast, values)
        naive = _measure(side.run_stages(cast, x)[ctx.spec.output_name], truth)
        rows.append(
            _row(ctx, "bn_bf16", f"{backend}: {pure} vs {mixed}", naive, _measure(_in(model, "bf16", x), truth))
        )
    return rows


def _int8(ctx: Context, *changes: Callable[[Any], None]) -> list[Measure]:
    """The torch model's ONNX file (exported once) quantised by onnxruntime as each of `changes` sets it up."""
    torch_model, _, _ = _pair(ctx)
    x, calibration = _x(ctx), _x(ctx, CALIBRATION)
    truth = _truth(torch_model, x)
    ort = runtime_named("onnxruntime")
    way = Route(ort, torch_model, True)
    measures = []
    with tempfile.TemporaryDirectory() as folder, quiet_imports():
        path = way.export(torch_model, Path(folder), x.shape, unit=False)
        for index, change in enumerate(changes):
            runtime = copy.copy(ort)
            change(runtime)
            place = Path(folder) / str(index)
            place.mkdir()
            session = runtime.load(runtime.lower(path, place, "int8", [calibration]), "int8")
            measures.append(_measure(way.run(session, x), truth))
    return measures


def run_int8_granularity(ctx: Context) -> list[Finding]:
    """onnxruntime's static int8 with one weight scale per tensor vs per output channel."""
    skipped = unavailable(ctx, "int8_granularity", "per tensor vs per channel", "onnxruntime")
    if skipped:
        return skipped
    naive, correct = _int8(ctx, lambda runtime: setattr(runtime, "PER_CHANNEL", False), lambda runtime: None)
    return [_row(ctx, "int8_granularity", "onnxruntime QDQ: weights per tensor vs per channel", naive, correct)]


def run_int8_ends(ctx: Context) -> list[Finding]:
    """Every layer int8 (torchvision's quantized ResNets) vs the first convolution and the fc kept in fp32."""
    skipped = unavailable(ctx, "int8_ends", "all int8 vs ends fp32", "onnxruntime")
    if skipped:
        return skipped
    naive, correct = _int8(ctx, lambda runtime: None, lambda runtime: setattr(runtime, "FLOAT_ENDS", True))
    return [_row(ctx, "int8_ends", "onnxruntime QDQ: every layer int8 vs conv1 and fc in fp32", naive, correct)]


def run_mixed_vs_autocast(ctx: Context) -> list[Finding]:
    """BatchNorm alone on a bf16 input: torch autocast computes it in bf16, Keras' mixed policy in float32."""
    torch_model, keras_model, _ = _pair(ctx)
    x = _x(ctx)
    name = "layer1.0.bn1"
    side = adapter_named("torch")
    with side.float64(torch_model) as model64:
        inp = side.run_unit(model64, "layer1.0.conv1", side.run_stages(model64, x.astype(np.float64))["stem"])
        truth = side.run_unit(model64, name, inp)
    outs = []
    for model in (torch_model, keras_model):
        engine = Engine("bf16", model)
        outs.append(engine.runner(name, inp.shape, [], Path(tempfile.gettempdir()))(inp.astype(np.float32)))
    case = f"{name} alone on bf16 input: torch autocast (bf16 arithmetic) vs Keras mixed_bfloat16 (float32 inside)"
    naive, correct = (_measure(out, truth) for out in outs)
    return [_row(ctx, "mixed_vs_autocast", case, naive, correct)]
