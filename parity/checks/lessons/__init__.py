"""Every known PyTorch/Keras difference, measured: a naive port beside the correct one, in one run.

Each lesson builds (or runs) the Keras side with one difference left unhandled, measures how far it
drifts from the torch model, and measures the correct port the same way in the same run. Nothing
here is a typed-in number: `run_lessons` produces every figure the table, the docs and the plot show.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from parity.checks.check import build_pair
from parity.checks.lessons import catalogue  # noqa: F401 - fills LESSONS, in the table's order
from parity.checks.lessons.base import LESSONS, Context, Finding, Lesson, Measure
from parity.io.weights import copy_weights, random_weights, set_weights
from parity.spec import ResNetSpec, make_spec

__all__ = ["LESSONS", "Context", "Finding", "Lesson", "Measure", "run_lessons"]


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
