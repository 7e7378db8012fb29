"""What every lesson shares: the measure of one port's drift (`Measure`), a table row (`Finding`), a lesson
(`Lesson`), the run's reference pair (`Context`), and the registry `LESSONS` (filled by `catalogue`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parity.backends import adapter_named
from parity.checks.check import random_input
from parity.checks.compare import compare
from parity.checks.diff import StageDiff
from parity.core import tolerances
from parity.io.weights import set_weights
from parity.spec import ResNetSpec


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


def finding(
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


def naive_model(ctx: Context, difference: str) -> Any:
    model = adapter_named("keras").build_naive(ctx.spec, difference)
    set_weights(model, ctx.weights)
    return model


def all_stride2_inputs_odd(spec: ResNetSpec, size: int) -> bool:
    return all(r.input_shape[1] % 2 == 1 and r.input_shape[2] % 2 == 1 for r in spec.layer_table(size) if r.stride == 2)


LESSONS: dict[str, Lesson] = {}
"""Every lesson by key, in the order the table, the docs page and the plot show them (`catalogue`)."""
