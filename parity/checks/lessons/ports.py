"""Lessons on the model and its ops: padding, BatchNorm epsilon, weight layout, flatten order, initialisers,
the train/eval flag, TF32 and NaN."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from parity.backends import adapter_named
from parity.checks.compare import compare, cuda_available, run_stages
from parity.checks.diff import StageDiff
from parity.checks.lessons.base import (
    LESSONS,
    Context,
    Finding,
    Measure,
    all_stride2_inputs_odd,
    finding,
    naive_model,
)
from parity.core import tolerances
from parity.core.layout import flatten_weight_nchw_to_nhwc
from parity.io.weights import check_weights, get_weights, set_weights


def run_same_padding(ctx: Context) -> list[Finding]:
    lesson = LESSONS["same_padding"]
    naive = naive_model(ctx, "same_padding")
    findings = []
    for size in (ctx.size, ctx.size + 1):
        odd = all_stride2_inputs_odd(ctx.spec, size)
        case = f"{size}x{size}: " + ("every stride-2 input odd" if odd else "a stride-2 input is even")
        x = ctx.x(size)
        findings.append(finding(ctx, lesson, case, ctx.compare(naive, x), ctx.compare(ctx.keras_model, x)))
    return findings


def run_maxpool_padding(ctx: Context) -> list[Finding]:
    lesson = LESSONS["maxpool_padding"]
    torch_side, keras_side = adapter_named("torch"), adapter_named("keras")
    t = ctx.torch_model
    pool = ctx.spec.stem_plan().pool
    if pool is None:
        return [
            finding(
                ctx, lesson, "cifar stem has no max-pool", None, Measure(0, 0, None), skipped="no max-pool in this stem"
            )
        ]
    pre = torch_side.run_unit(t, "bn1", torch_side.run_unit(t, "conv1", ctx.x()))  # the stem before its ReLU
    findings = []
    for case, tensor in (("after ReLU (as in ResNet)", np.maximum(pre, 0)), ("before ReLU (signed input)", pre)):
        reference = torch_side.run_unit(t, "maxpool", tensor)
        # What the Keras model does: zero padding, then a 'valid' pool.
        zeros = keras_side.zero_padded_pool(tensor, pool.kernel, pool.stride, pool.padding)
        diff = StageDiff.measure("stem", reference, zeros, tolerances.FP32_CPU)
        measure = Measure.of_diff(diff, "op-level: torch MaxPool2d vs ZeroPadding2D + MaxPooling2D")
        correct = (
            measure if case.startswith("after") else Measure(0.0, 0.0, None, {}, "not reached: ResNet pools after ReLU")
        )
        findings.append(finding(ctx, lesson, case, measure, correct))
    return findings


def run_bn_eps(ctx: Context) -> list[Finding]:
    lesson = LESSONS["bn_eps"]
    x = ctx.x()
    return [
        finding(
            ctx,
            lesson,
            f"eps {1e-3:g} vs {ctx.spec.bn_eps:g}",
            ctx.compare(naive_model(ctx, "bn_eps_default"), x),
            ctx.compare(ctx.keras_model, x),
        )
    ]


def run_weight_layout(ctx: Context) -> list[Finding]:
    lesson = LESSONS["weight_layout"]
    keras_side = adapter_named("keras")
    naive = keras_side.build(ctx.spec)
    keras_side.assign_reshaped(naive, check_weights(naive, ctx.weights))
    x = ctx.x()
    return [
        finding(ctx, lesson, "kernels reshaped, not transposed", ctx.compare(naive, x), ctx.compare(ctx.keras_model, x))
    ]


def run_flatten_order(ctx: Context) -> list[Finding]:
    lesson = LESSONS["flatten_order"]
    x = ctx.x(max(ctx.size, 64))  # a map of at least 2x2, or the flatten order cannot matter
    last = f"layer{len(ctx.spec.layers)}"
    features = run_stages(ctx.torch_model, x)[last]
    _, c, h, w = features.shape
    rng = np.random.default_rng(ctx.seed)
    weight = rng.uniform(-1, 1, (10, c * h * w)).astype(np.float32) / math.sqrt(c * h * w)
    reference = adapter_named("torch").flatten(features) @ weight.T
    flat = adapter_named("keras").flatten(run_stages(ctx.keras_model, x)[last])  # Keras' own map, flattened its way
    naive = flat @ weight.T  # the torch fc weight used as is
    correct = flat @ flatten_weight_nchw_to_nhwc(weight, c, h, w).T
    case = f"fc on flattened {c}x{h}x{w} {last} map"
    return [
        finding(
            ctx,
            lesson,
            case,
            Measure.of_diff(StageDiff.measure("logits", reference, naive, tolerances.FP32_CPU), "op-level"),
            Measure.of_diff(StageDiff.measure("logits", reference, correct, tolerances.FP32_CPU), "op-level"),
        )
    ]


def run_initializers(ctx: Context) -> list[Finding]:
    """Fresh-init weight scale per layer, Keras (naive / ours) vs torchvision's init, as relative std gap."""
    torch_side, keras_side = adapter_named("torch"), adapter_named("keras")
    lesson = LESSONS["initializers"]
    keras_side.seed(ctx.seed)
    torch_side.seed(ctx.seed)
    fresh_torch = torch_side.build(ctx.spec)
    ours = keras_side.build(ctx.spec)
    naive = keras_side.build_naive(ctx.spec, "default_initializers")
    reference = get_weights(fresh_torch)
    keys = [k for k, v in reference.items() if k.endswith("weight") and v.ndim in (2, 4)]

    def gap(model: Any) -> Measure:
        weights = get_weights(model)
        stages: dict[str, float] = {}
        worst = (0.0, "")
        for key in keys:
            rel = abs(float(weights[key].std()) / float(reference[key].std()) - 1.0)
            stage = "stem" if key.startswith("conv1") else ("logits" if key.startswith("fc") else key.split(".")[0])
            stages[stage] = max(stages.get(stage, 0.0), rel)
            worst = max(worst, (rel, stage))
        first = next((s for s in ctx.spec.stage_names if stages.get(s, 0) > tolerances.INIT_STD_REL), None)
        return Measure(float("nan"), worst[0], first, stages, "relative gap in per-layer weight std", metric="init std")

    return [
        finding(
            ctx, lesson, "fresh models, per-layer weight std", gap(naive), gap(ours), tolerance=tolerances.INIT_STD_REL
        )
    ]


def run_train_eval(ctx: Context) -> list[Finding]:
    lesson = LESSONS["train_eval"]
    x = ctx.x(batch=2)
    reference = run_stages(ctx.torch_model, x)
    keras_side = adapter_named("keras")
    scratch = keras_side.build(ctx.spec)  # training=True updates moving statistics: never on the shared model
    set_weights(scratch, ctx.weights)
    outputs = keras_side.run_stages(scratch, x, training=True)
    stages = [
        StageDiff.measure(stage, reference[stage], outputs[stage], tolerances.FP32_CPU)
        for stage in ctx.spec.stage_names
    ]
    first = next((s.stage for s in stages if not s.passed), None)
    naive = Measure(stages[-1].max_abs, stages[-1].max_rel, first, {s.stage: s.max_rel for s in stages})
    return [
        finding(ctx, lesson, "Keras called with training=True at inference", naive, ctx.compare(ctx.keras_model, x))
    ]


def run_tf32(ctx: Context) -> list[Finding]:
    lesson = LESSONS["tf32"]
    if ctx.device != "cuda" or not cuda_available():
        return [finding(ctx, lesson, "needs a CUDA device", None, Measure(0, 0, None), skipped="no CUDA device")]
    x = ctx.x(batch=2)
    fp32 = compare(ctx.torch_model, ctx.keras_model, x, device="cuda", float64=False)
    reference = run_stages(ctx.torch_model, x, "cuda")
    from parity.checks.compare import precision

    with precision("cuda", allow_tf32=True):
        tf32 = run_stages(ctx.keras_model, x, "cuda")
    stages = [StageDiff.measure(s, reference[s], tf32[s], tolerances.FP32_CUDA) for s in ctx.spec.stage_names]
    first = next((s.stage for s in stages if not s.passed), None)
    naive = Measure(stages[-1].max_abs, stages[-1].max_rel, first, {s.stage: s.max_rel for s in stages})
    return [
        finding(
            ctx,
            lesson,
            "Keras side with TF32 on, torch fp32",
            naive,
            Measure.of_report(fp32),
            tolerance=tolerances.FP32_CUDA,
        )
    ]


def run_maxpool_nan(ctx: Context) -> list[Finding]:
    lesson = LESSONS["maxpool_nan"]
    x = ctx.x()
    x[0, 0, ctx.size // 3, ctx.size // 3] = np.nan
    report = compare(
        ctx.torch_model, ctx.keras_model, x, device=ctx.device, float64=False, tolerance=tolerances.FP32_CPU
    )
    stem = report.stage("stem")
    naive = Measure(
        stem.max_abs,
        stem.max_rel,
        report.first_divergent,
        {s.stage: s.max_rel for s in report.stages},
        f"NaNs at the stem: torch {stem.nan_a}, keras {stem.nan_b}",
        metric="NaN masks",
    )
    clean = ctx.compare(ctx.keras_model, ctx.x())
    return [finding(ctx, lesson, f"one NaN pixel: {stem.nan_a} vs {stem.nan_b} NaNs at the stem", naive, clean)]
