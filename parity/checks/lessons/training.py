"""Lessons on training: BatchNorm momentum and running variance, SGD weight decay, Adam's epsilon."""

from __future__ import annotations

from typing import Any

from parity.backends import adapter_named
from parity.checks.compare import compare
from parity.checks.diff import StageDiff
from parity.checks.lessons.base import (
    LESSONS,
    Context,
    Finding,
    Lesson,
    Measure,
    finding,
)
from parity.core import tolerances
from parity.io.weights import get_weights


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
        finding(ctx, lesson, f"eval outputs after {steps} SGD steps", naive_eval, correct_eval, tolerance=tol),
        finding(
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
            finding(
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
        finding(
            ctx, lesson, f"weights after {steps} steps, keras.optimizers.Adam() (eps 1e-7)", stock, ours, tolerance=tol
        ),
        finding(
            ctx, lesson, f"weights after {steps} steps, Adam(epsilon=1e-8): placement only", placed, ours, tolerance=tol
        ),
    ]
