"""Every known PyTorch/Keras difference, measured: a naive port beside the correct one, in one run.

Each lesson builds (or runs) the Keras side with one difference left unhandled, measures how far it
drifts from the torch model, and measures the correct port the same way in the same run. Nothing
here is a typed-in number: `run_lessons` produces every figure the table, the docs and the plot show.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parity.backends import adapter_named
from parity.checks.check import build_pair, random_input
from parity.checks.compare import StageDiff, compare, cuda_available, run_stages
from parity.core import tolerances
from parity.core.layout import flatten_weight_nchw_to_nhwc
from parity.io.weights import check_weights, copy_weights, get_weights, random_weights, set_weights
from parity.spec import ResNetSpec, make_spec


@dataclass
class Measure:
    """Drift of one port (naive or correct) from the torch model."""

    max_abs: float
    max_rel: float
    first_divergent: str | None
    stages: dict[str, float] = field(default_factory=dict)  # stage -> max_rel, model-level only
    note: str = ""
    metric: str = "outputs"  # what max_rel measures: "outputs" (drift from torch) or something else

    @classmethod
    def of_report(cls, report) -> Measure:
        return cls(
            report.logits.max_abs,
            report.logits.max_rel,
            report.first_divergent,
            {s.stage: s.max_rel for s in report.stages},
        )

    @classmethod
    def of_diff(cls, diff: StageDiff, note: str = "") -> Measure:
        return cls(diff.max_abs, diff.max_rel, None if diff.passed else diff.stage, {}, note)


@dataclass
class Finding:
    """One row of the lessons table."""

    lesson: str
    title: str
    case: str
    handled: str
    naive: Measure | None
    correct: Measure
    tolerance: float
    skipped: str = ""
    seconds: float = 0.0

    @property
    def caught(self) -> bool | None:
        """True when the naive port exceeds the tolerance (the difference matters in this case)."""
        if self.naive is None:
            return None
        return self.naive.first_divergent is not None or self.naive.max_rel > self.tolerance

    @property
    def correct_ok(self) -> bool:
        return self.skipped != "" or (self.correct.first_divergent is None and self.correct.max_rel <= self.tolerance)


@dataclass
class Lesson:
    """A difference between the frameworks and where this project handles it."""

    key: str
    title: str
    handled: str
    why: str
    torch_code: str  # "module:function" shown in the docs
    keras_code: str
    run: Callable[[Context], list[Finding]]


@dataclass
class Context:
    """What every lesson needs: the spec, input size, device and the ported reference pair."""

    spec: ResNetSpec
    size: int
    device: str
    seed: int
    torch_model: Any = None
    keras_model: Any = None
    weights: dict = field(default_factory=dict)
    train_steps: int = 3
    train_size: int = 64
    trained_correct: tuple | None = None
    families: dict = field(default_factory=dict)  # the family lessons' narrow pairs, built once

    def x(self, size: int | None = None, batch: int = 1) -> np.ndarray:
        size = size or self.size
        return random_input(self.spec, batch, size, size, self.seed)

    def compare(self, keras_model: Any, x: np.ndarray, torch_model: Any = None) -> Measure:
        """The drift of a Keras port from the torch model (ctx's own, or a family lesson's `torch_model`)."""
        # The lessons' networks are uncalibrated (their figures compare with the earlier fp32 scan):
        # fp32 end to end against FP32_CPU, as a user without the float64 pass would see it.
        reference = self.torch_model if torch_model is None else torch_model
        return Measure.of_report(
            compare(reference, keras_model, x, device=self.device, float64=False, tolerance=tolerances.FP32_CPU)
        )


def _finding(
    ctx: Context,
    lesson: Lesson,
    case: str,
    naive: Measure | None,
    correct: Measure,
    tolerance: float | None = None,
    skipped: str = "",
) -> Finding:
    return Finding(
        lesson.key,
        lesson.title,
        case,
        lesson.handled,
        naive,
        correct,
        tolerances.FP32_CPU if tolerance is None else tolerance,
        skipped,
    )


def _naive_model(ctx: Context, difference: str) -> Any:
    model = adapter_named("keras").build_naive(ctx.spec, difference)
    set_weights(model, ctx.weights)
    return model


def _all_stride2_inputs_odd(spec: ResNetSpec, size: int) -> bool:
    return all(r.input_shape[1] % 2 == 1 and r.input_shape[2] % 2 == 1 for r in spec.layer_table(size) if r.stride == 2)


# -- the lessons -----------------------------------------------------------------------------------


def run_same_padding(ctx: Context) -> list[Finding]:
    lesson = LESSONS["same_padding"]
    naive = _naive_model(ctx, "same_padding")
    findings = []
    for size in (ctx.size, ctx.size + 1):
        odd = _all_stride2_inputs_odd(ctx.spec, size)
        case = f"{size}x{size}: " + ("every stride-2 input odd" if odd else "a stride-2 input is even")
        x = ctx.x(size)
        findings.append(_finding(ctx, lesson, case, ctx.compare(naive, x), ctx.compare(ctx.keras_model, x)))
    return findings


def run_maxpool_padding(ctx: Context) -> list[Finding]:
    lesson = LESSONS["maxpool_padding"]
    torch_side, keras_side = adapter_named("torch"), adapter_named("keras")
    t = ctx.torch_model
    pool = ctx.spec.stem_plan().pool
    if pool is None:
        return [
            _finding(
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
        findings.append(_finding(ctx, lesson, case, measure, correct))
    return findings


def run_bn_eps(ctx: Context) -> list[Finding]:
    lesson = LESSONS["bn_eps"]
    x = ctx.x()
    return [
        _finding(
            ctx,
            lesson,
            f"eps {1e-3:g} vs {ctx.spec.bn_eps:g}",
            ctx.compare(_naive_model(ctx, "bn_eps_default"), x),
            ctx.compare(ctx.keras_model, x),
        )
    ]


def _trained_pair(ctx: Context, difference: str | None, decoupled_decay: bool = False) -> tuple[Measure, Any]:
    """Train torch and a (naive or correct) Keras copy for ctx.train_steps; eval drift and train report."""
    from parity.checks.train_steps import SGDConfig, compare_training, training_pair

    torch_model, keras_model = training_pair(ctx.spec, ctx.weights, "float64", difference)
    report = compare_training(
        torch_model,
        keras_model,
        steps=ctx.train_steps,
        batch=8,
        height=ctx.train_size,
        seed=ctx.seed,
        config=SGDConfig(),
        decoupled_decay=decoupled_decay,
    )
    evaluated = Measure.of_report(
        compare(
            torch_model, keras_model, ctx.x(), device=ctx.device, tolerance=tolerances.TRAIN_STEP_FP64, float64=False
        )
    )
    return evaluated, report


def _training_findings(ctx: Context, lesson: Lesson, difference: str | None, decoupled: bool = False) -> list[Finding]:
    naive_eval, naive_train = _trained_pair(ctx, difference, decoupled)
    if ctx.trained_correct is None:  # shared by the three training lessons
        ctx.trained_correct = _trained_pair(ctx, None)
    correct_eval, correct_train = ctx.trained_correct
    tol = tolerances.TRAIN_STEP_FP64
    stats = Measure.of_diff(naive_train.running, "worst running statistic after training")
    weights = Measure.of_diff(naive_train.weights, "worst weight after training")
    steps = ctx.train_steps
    rows = [
        _finding(ctx, lesson, f"eval outputs after {steps} SGD steps", naive_eval, correct_eval, tolerance=tol),
        _finding(
            ctx,
            lesson,
            f"BN running statistics after {steps} steps",
            stats,
            Measure.of_diff(correct_train.running),
            tolerance=tol,
        ),
    ]
    if decoupled:
        rows.append(
            _finding(
                ctx,
                lesson,
                f"weights after {steps} steps",
                weights,
                Measure.of_diff(correct_train.weights),
                tolerance=tol,
            )
        )
    return rows


def run_bn_momentum(ctx: Context) -> list[Finding]:
    return _training_findings(ctx, LESSONS["bn_momentum"], "bn_momentum_unconverted")


def run_bn_variance(ctx: Context) -> list[Finding]:
    return _training_findings(ctx, LESSONS["bn_variance"], "bn_variance_biased")


def run_weight_decay(ctx: Context) -> list[Finding]:
    return _training_findings(ctx, LESSONS["weight_decay"], None, decoupled=True)


def _adam_drift(ctx: Context, stock_eps: float | None = None, stock: bool = False) -> StageDiff:
    """Worst weight after ctx.train_steps Adam steps (lr 1e-3, float64): torch.optim.Adam vs Keras' own Adam
    (`stock`, with `stock_eps` or its default) or ours, both through the `train` command's step functions."""
    from parity.checks.train_steps import make_batches, training_pair, worst_tensor

    torch_side, keras_side = adapter_named("torch"), adapter_named("keras")
    torch_model, keras_model = training_pair(ctx.spec, ctx.weights, "float64")
    torch_opt = torch_side.make_optimizer(torch_model, "adam", ADAM_LR)
    if stock:
        keras_opt = keras_side.stock_optimizer(keras_model, "adam", ADAM_LR, eps=stock_eps)
    else:
        keras_opt = keras_side.make_optimizer(keras_model, "adam", ADAM_LR)
    for images, labels in make_batches(ctx.spec, ctx.train_steps, 8, ctx.train_size, ctx.train_size, ctx.seed):
        torch_side.train_step(torch_model, torch_opt, images, labels)
        keras_side.train_step(keras_model, keras_opt, images, labels)
    trainable = [k for k in ctx.spec.canonical_shapes() if not k.endswith(("running_mean", "running_var"))]
    return worst_tensor(
        "weights", get_weights(torch_model), get_weights(keras_model), trainable, tolerances.TRAIN_STEP_FP64
    )


ADAM_LR = 1e-3


def run_adam_epsilon(ctx: Context) -> list[Finding]:
    lesson = LESSONS["adam_epsilon"]
    ours = Measure.of_diff(_adam_drift(ctx))
    steps, tol = ctx.train_steps, tolerances.TRAIN_STEP_FP64
    stock = Measure.of_diff(_adam_drift(ctx, stock=True), "worst weight after training")
    placed = Measure.of_diff(_adam_drift(ctx, stock_eps=1e-8, stock=True), "worst weight after training")
    return [
        _finding(
            ctx, lesson, f"weights after {steps} steps, keras.optimizers.Adam() (eps 1e-7)", stock, ours, tolerance=tol
        ),
        _finding(
            ctx, lesson, f"weights after {steps} steps, Adam(epsilon=1e-8): placement only", placed, ours, tolerance=tol
        ),
    ]


def run_weight_layout(ctx: Context) -> list[Finding]:
    lesson = LESSONS["weight_layout"]
    keras_side = adapter_named("keras")
    naive = keras_side.build(ctx.spec)
    keras_side.assign_reshaped(naive, check_weights(naive, ctx.weights))
    x = ctx.x()
    return [
        _finding(
            ctx, lesson, "kernels reshaped, not transposed", ctx.compare(naive, x), ctx.compare(ctx.keras_model, x)
        )
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
        _finding(
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
        _finding(
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
        _finding(ctx, lesson, "Keras called with training=True at inference", naive, ctx.compare(ctx.keras_model, x))
    ]


def run_tf32(ctx: Context) -> list[Finding]:
    lesson = LESSONS["tf32"]
    if ctx.device != "cuda" or not cuda_available():
        return [_finding(ctx, lesson, "needs a CUDA device", None, Measure(0, 0, None), skipped="no CUDA device")]
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
        _finding(
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
    return [_finding(ctx, lesson, f"one NaN pixel: {stem.nan_a} vs {stem.nan_b} NaNs at the stem", naive, clean)]


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
        findings.append(_finding(ctx, lesson, case, measured, ctx.compare(keras_model, x, torch_model)))
    return findings


def _v2_finding(ctx: Context, key: str, case: str, naive_of: Callable[[ResNetSpec], Any]) -> list[Finding]:
    """One row on a narrow keras.applications V2: the torch model, `naive_of(spec)` and the correct Keras port."""
    spec, torch_model, keras_model, weights = _family(ctx, "resnet50v2", layers=(2, 2, 2, 1))
    naive = naive_of(spec)
    set_weights(naive, weights)
    x = random_input(spec, 1, ctx.size, ctx.size, ctx.seed)
    measured = _compare_or_fail(ctx, torch_model, naive, x, "layer1")
    return [_finding(ctx, LESSONS[key], case, measured, ctx.compare(keras_model, x, torch_model))]


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


LESSONS: dict[str, Lesson] = {}


def _lesson(key: str, title: str, handled: str, why: str, torch_code: str, keras_code: str, run) -> None:
    LESSONS[key] = Lesson(key, title, handled, why, torch_code, keras_code, run)


_lesson(
    "same_padding",
    "stride-2 'same' padding",
    "resnet_keras.layers.make_pad / make_conv",
    "TensorFlow's 'same' pads (k - s) rows in total and puts the odd one at the bottom/right; torch "
    "pads `padding` rows on both sides. They agree only when the input of every stride-2 op is odd.",
    "resnet_torch.layers:make_conv",
    "resnet_keras.layers:make_pad",
    run_same_padding,
)
_lesson(
    "maxpool_padding",
    "max-pool padding: -inf vs zeros",
    "resnet_keras.layers.make_pool",
    "torch pads a max-pool with -inf; Keras has only zero padding (or 'same'). After a ReLU every input "
    "is >= 0, so a zero never beats a real value and the two agree exactly.",
    "resnet_torch.layers:make_pool",
    "resnet_keras.layers:make_pool",
    run_maxpool_padding,
)
_lesson(
    "bn_eps",
    "BatchNorm epsilon",
    "parity.spec (bn_eps) -> make_norm",
    "Keras' default epsilon is 1e-3, torch's 1e-5; every BN divides by sqrt(var + eps).",
    "resnet_torch.layers:make_norm",
    "resnet_keras.layers:make_norm",
    run_bn_eps,
)
_lesson(
    "bn_momentum",
    "BatchNorm momentum convention",
    "resnet_keras.layers.make_norm",
    "torch's momentum is the weight of the new batch (0.1), Keras' the weight of the old value (0.9). "
    "Inference is unaffected until a training step updates the running statistics.",
    "resnet_torch.layers:make_norm",
    "resnet_keras.layers:make_norm",
    run_bn_momentum,
)
_lesson(
    "bn_variance",
    "running variance: unbiased vs biased",
    "resnet_keras.layers.BatchNorm",
    "Both normalise a training batch with its biased variance, but torch updates running_var with the "
    "unbiased one (x n/(n-1)); stock Keras uses the biased one. Small batches or maps make n small.",
    "resnet_torch.layers:make_norm",
    "resnet_keras.layers:BatchNorm",
    run_bn_variance,
)
_lesson(
    "weight_decay",
    "SGD weight decay: coupled vs decoupled",
    "resnet_keras.train.CoupledDecay",
    "torch's SGD adds weight_decay * w to the gradient, so decay goes through momentum; Keras' "
    "SGD(weight_decay=...) shrinks the weights directly.",
    "resnet_torch.train:make_optimizer",
    "resnet_keras.train:CoupledDecay",
    run_weight_decay,
)
_lesson(
    "adam_epsilon",
    "Adam: epsilon placement and default",
    "resnet_keras.train.Adam",
    "torch divides the second moment by its bias correction before adding eps; Keras folds both "
    "corrections into the step size and adds eps to sqrt(v), so its eps acts sqrt(1 - beta2^t) times "
    "smaller (31.6x at step 1). Keras' default eps is also 1e-7, torch's 1e-8.",
    "resnet_torch.train:make_optimizer",
    "resnet_keras.train:Adam",
    run_adam_epsilon,
)
_lesson(
    "weight_layout",
    "conv weight layout OIHW vs HWIO",
    "parity.core.layout.keras_layout / torch_layout",
    "torch stores conv weights (out, in, kh, kw), Keras (kh, kw, in, out); a reshape keeps the shape "
    "right and the numbers wrong. Only a transpose moves each weight to its place.",
    "parity.core.layout:torch_layout",
    "parity.core.layout:keras_layout",
    run_weight_layout,
)
_lesson(
    "flatten_order",
    "NCHW vs NHWC flatten order",
    "resnet_*/model.py forward_stages (pool, then flatten)",
    "Flattening (C, H, W) and (H, W, C) orders the same features differently, so an fc weight trained "
    "on one is scrambled on the other. ResNet pools to 1x1 first, where the order no longer matters; a "
    "flattening head needs its weight columns permuted.",
    "resnet_torch.model:ResNet.forward_stages",
    "parity.core.layout:flatten_weight_nchw_to_nhwc",
    run_flatten_order,
)
_lesson(
    "initializers",
    "default initialisers",
    "resnet_keras.layers.make_conv / make_fc",
    "torchvision draws conv weights from kaiming normal (fan_out) and fc weights from U(+-1/sqrt(in)); "
    "Keras defaults to Glorot uniform and zero biases. Ported weights are unaffected; training from "
    "scratch starts elsewhere.",
    "resnet_torch.model:ResNet.init_weights",
    "resnet_keras.layers:make_conv",
    run_initializers,
)
_lesson(
    "train_eval",
    "train / eval flag",
    "parity.backends.<framework>.run: run_stages",
    "In training mode BatchNorm uses the batch's statistics instead of the running ones. torch keeps a "
    "mode on the module (model.eval()); Keras takes training= on every call.",
    "parity.backends.torch.run:TorchRun.run_stages",
    "parity.backends.keras.run:KerasRun.run_stages",
    run_train_eval,
)
_lesson(
    "tf32",
    "TF32 on NVIDIA GPUs",
    "parity.checks.compare.precision",
    "Ampere+ GPUs may run fp32 convs and matmuls in TF32 (10-bit mantissa). torch, TF, JAX and "
    "onnxruntime each have their own switch and default.",
    "parity.backends.torch.run:TorchRun.tf32",
    "parity.backends.keras.run:KerasRun.tf32",
    run_tf32,
)
_lesson(
    "maxpool_nan",
    "max-pool and NaN",
    "parity.checks.compare.StageDiff (NaN masks compared)",
    "torch's max-pool propagates a NaN; TensorFlow's max-pool drops it. Not a porting error: a NaN input "
    "is reported as a mismatch at the stem, with the NaN counts.",
    "resnet_torch.layers:make_pool",
    "resnet_keras.layers:make_pool",
    run_maxpool_nan,
)

_lesson(
    "avg_pool_edge",
    "average pool at an odd edge (ResNet-D)",
    "resnet_keras.layers.make_pool",
    "ResNet-D's shortcut averages 2x2 before its 1x1 conv. timm writes AvgPool2d(2, 2, ceil_mode=True, "
    "count_include_pad=False): an odd last row is a window of its own, averaged over its real cells. Keras' "
    "AveragePooling2D defaults to 'valid', which drops that row; 'same' averages it as torch does.",
    "resnet_torch.layers:make_pool",
    "resnet_keras.layers:make_pool",
    run_avg_pool_edge,
)
_lesson(
    "subsample_shortcut",
    "V2's strided 1x1 max-pool shortcut",
    "parity.spec (shortcut='subsample') -> make_downsample",
    "keras.applications' ResNet V2 strides in a stage's last block, whose identity is MaxPooling2D(1, 2): "
    "it keeps every other pixel, no weights. Written as a 2x2 average (ResNet-D's pool) it still runs, "
    "with other numbers.",
    "resnet_torch.model:make_downsample",
    "resnet_keras.model:make_downsample",
    run_subsample_shortcut,
)
_lesson(
    "v2_stride",
    "where ResNet V2 strides",
    "parity.spec (stride_at) -> block_plans",
    "keras.applications' V2 strides in each stage's last block (none in the last stage); torchvision, timm "
    "and keras-hub stride in the first. Every weight has the same shape either way: a V2 file loads into "
    "the other layout silently and computes another function.",
    "parity.spec.resnet:ResNetSpec._block_stride",
    "parity.spec.resnet:ResNetSpec._block_stride",
    run_v2_stride,
)


def run_lessons(
    arch: str = "resnet18",
    size: int = 64,
    device: str = "cpu",
    seed: int = 0,
    only: list[str] | None = None,
    train_steps: int = 3,
    train_size: int = 64,
    progress: Callable[[str], None] | None = None,
    spec: ResNetSpec | None = None,
) -> list[Finding]:
    """Measure every lesson (or those in `only`) on one architecture; returns the table's rows.

    Args:
        arch: preset architecture.
        size: even input size; lessons that need an odd size use size + 1.
        device: "cpu" or "cuda".
        seed: seeds weights and inputs.
        only: lesson keys to run (default all).
        train_steps: SGD steps for the training lessons.
        train_size: image size of their batches of 8 (float64).
        progress: called with each lesson's title before it runs.
        spec: a full spec instead of the preset (e.g. narrower widths: the same mechanisms, less memory).
    """
    unknown = sorted(set(only or []) - set(LESSONS))
    if unknown:
        raise ValueError(f"unknown lesson(s) {', '.join(unknown)}; choose from {', '.join(LESSONS)}")
    spec = spec or make_spec(arch)
    ctx = Context(spec, size, device, seed, train_steps=train_steps, train_size=train_size)
    ctx.torch_model, ctx.keras_model = build_pair(spec)
    ctx.weights = random_weights(spec, seed)
    set_weights(ctx.torch_model, ctx.weights)
    copy_weights(ctx.torch_model, ctx.keras_model)
    findings = []
    for key, lesson in LESSONS.items():
        if only and key not in only:
            continue
        if progress:
            progress(lesson.title)
        start = time.perf_counter()
        rows = lesson.run(ctx)
        for row in rows:
            row.seconds = (time.perf_counter() - start) / len(rows)
        findings.extend(rows)
    return findings


def snippet(ref: str) -> str:
    """Source of `module:qualname` (e.g. 'resnet_keras.layers:make_pad'), read from the file (nothing imported)."""
    import ast
    import importlib.util

    module_name, qualname = ref.split(":")
    found = importlib.util.find_spec(module_name)
    if found is None or found.origin is None:
        raise ValueError(f"no module {module_name!r}")
    source = open(found.origin, encoding="utf-8").read()
    node: Any = ast.parse(source)
    for part in qualname.split("."):
        node = next(n for n in node.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part)
    lines = source.splitlines()
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    indent = len(lines[start - 1]) - len(lines[start - 1].lstrip())
    return "\n".join(line[indent:] for line in lines[start - 1 : node.end_lineno]).rstrip()
