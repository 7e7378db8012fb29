"""Lessons of the families: ResNet-D's average pool at an odd edge, V2's strided max-pool shortcut and where
V2 strides, each on a narrow copy of the family."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from parity.backends import adapter_named
from parity.checks.check import build_pair, random_input
from parity.checks.compare import run_stages
from parity.checks.diff import StageDiff
from parity.checks.lessons.base import (
    LESSONS,
    Context,
    Finding,
    Measure,
    finding,
)
from parity.core import tolerances
from parity.io.weights import copy_weights, random_weights, set_weights
from parity.spec import ResNetSpec, make_spec

FAMILY_WIDTHS = {"widths": (8, 16, 32, 64), "stem_width": 16, "deep_stem_width": 8, "num_classes": 10}
"""The families' lessons run on narrow copies: the mechanism is the same at any width."""


def _family(ctx: Context, arch: str, **overrides: Any) -> tuple[ResNetSpec, Any, Any, dict]:
    """(spec, torch model, correct Keras port, weights) of a narrow copy of a family preset (built once per run)."""
    key = (arch, tuple(sorted(overrides.items())))
    if key not in ctx.families:
        spec = make_spec(arch, **{**FAMILY_WIDTHS, **overrides})
        torch_model, keras_model = build_pair(spec)
        weights = random_weights(spec, ctx.seed)
        set_weights(torch_model, weights)
        copy_weights(torch_model, keras_model)
        ctx.families[key] = (spec, torch_model, keras_model, weights)
    return ctx.families[key]


def _compare_or_fail(ctx: Context, torch_model: Any, keras_model: Any, x: np.ndarray, where: str) -> Measure:
    """The drift of a port (stage by stage, the two specs may differ), or why it cannot run at all (`where`:
    the stage whose addition refuses the shapes)."""
    try:
        a, b = run_stages(torch_model, x, ctx.device), run_stages(keras_model, x, ctx.device)
    except Exception as exc:  # the frameworks raise their own types for a shape mismatch
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # Keras colours its messages
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        reason = next((line for line in lines if "shape" in line.lower()), lines[0] if lines else "")
        reason = reason[reason.lower().find("incompatible shapes") :] if "ncompatible shapes" in reason else reason
        return Measure(math.inf, math.inf, where, {}, f"does not run: {reason[:140]}")
    diffs = [StageDiff.measure(stage, a[stage], b[stage], tolerances.FP32_CPU) for stage in a]
    first = next((d.stage for d in diffs if not d.passed), None)
    return Measure(diffs[-1].max_abs, diffs[-1].max_rel, first, {d.stage: d.max_rel for d in diffs})


def run_avg_pool_edge(ctx: Context) -> list[Finding]:
    lesson = LESSONS["avg_pool_edge"]
    spec, torch_model, keras_model, weights = _family(ctx, "resnet50d", layers=(1, 1, 1, 1))
    naive = adapter_named("keras").build_naive(spec, "avg_pool_valid")
    set_weights(naive, weights)
    findings = []
    for size in (ctx.size, ctx.size + 1):
        x = random_input(spec, 1, size, size, ctx.seed)
        odd = any(r.input_shape[1] % 2 for r in spec.layer_table(size) if r.kind == "avgpool")
        case = f"{size}x{size}: " + ("an avg-down pool sees an odd size" if odd else "every avg-down input even")
        measured = _compare_or_fail(ctx, torch_model, naive, x, "layer2")
        findings.append(finding(ctx, lesson, case, measured, ctx.compare(keras_model, x, torch_model)))
    return findings


def _v2_finding(ctx: Context, key: str, case: str, naive_of: Callable[[ResNetSpec], Any]) -> list[Finding]:
    """One row on a narrow keras.applications V2: the torch model, `naive_of(spec)` and the correct Keras port."""
    spec, torch_model, keras_model, weights = _family(ctx, "resnet50v2", layers=(2, 2, 2, 1))
    naive = naive_of(spec)
    set_weights(naive, weights)
    x = random_input(spec, 1, ctx.size, ctx.size, ctx.seed)
    measured = _compare_or_fail(ctx, torch_model, naive, x, "layer1")
    return [finding(ctx, LESSONS[key], case, measured, ctx.compare(keras_model, x, torch_model))]


def run_subsample_shortcut(ctx: Context) -> list[Finding]:
    keras_side = adapter_named("keras")
    return _v2_finding(
        ctx,
        "subsample_shortcut",
        "2x2 average vs strided 1x1 max-pool",
        lambda spec: keras_side.build_naive(spec, "subsample_by_average"),
    )


def run_v2_stride(ctx: Context) -> list[Finding]:
    # torchvision's and keras-hub's placement: the stride on each stage's first block. Every weight has the
    # same shape, so the file loads without a word.
    keras_side = adapter_named("keras")
    return _v2_finding(
        ctx,
        "v2_stride",
        "stride on the first block vs the last",
        lambda spec: keras_side.build(spec.replace(stride_at="first", shortcut="projection")),
    )
