"""What a comparison finds: `StageDiff` (two tensors of one stage, block or layer) and `Report` (every figure
of one comparison and its verdicts). `parity.checks.compare` measures them; `parity.checks.report` writes the text."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from parity.core.formatting import json_safe


@dataclass
class StageDiff:
    """How far two tensors of one stage (or block, or layer) are apart.

    `max_rel` is max |a - b| over positions finite in both, divided by max |a| (a = reference).
    A NaN or inf in either tensor fails it, matched or not (`nan_*`, `*_mismatch` count them). For fp32 stages,
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
    finite: bool = True

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
        finite_a, finite_b = np.isfinite(a), np.isfinite(b)
        finite = finite_a & finite_b
        diff = np.abs(np.where(finite, a, 0.0) - np.where(finite, b, 0.0))
        max_abs = float(diff.max(initial=0.0))
        ref_max = max(float(np.max(np.abs(a), where=np.isfinite(a), initial=0.0)), floor)
        if ref_max > 0:
            max_rel = max_abs / ref_max
        else:
            max_rel = 0.0 if max_abs == 0 else math.inf
        # A value that is not finite, in either tensor, is never agreement: two NaNs are no evidence of a port.
        all_finite = bool(finite_a.all() and finite_b.all())
        passed = all_finite and max_rel <= tolerance
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
            finite=all_finite,
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
        diff = cls._within_noise(stage, a32, b32, cls.measure(stage, a64, a32, math.inf).max_rel, multiple, floor)
        diff.noise_b = cls.measure(stage, b64, b32, math.inf).max_rel
        return diff

    @classmethod
    def against_truth(
        cls, stage: str, truth: np.ndarray, a32: np.ndarray, out: np.ndarray, multiple: float, floor: float
    ) -> StageDiff:
        """`out` (a runtime's fp32 output) against the float64 `truth`, passing within `multiple` x the reference's
        own fp32 noise there (`a32` against `truth`; never below `floor`): the fp32 rule, judged from the truth."""
        return cls._within_noise(stage, truth, out, cls.measure(stage, truth, a32, math.inf).max_rel, multiple, floor)

    @classmethod
    def _within_noise(
        cls, stage: str, a: np.ndarray, b: np.ndarray, noise: float, multiple: float, floor: float
    ) -> StageDiff:
        tolerance = max(multiple * noise, floor) if math.isfinite(noise) else floor
        diff = cls.measure(stage, a, b, tolerance)
        diff.noise = noise
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
    nonfinite: str = ""
    names: dict[str, dict[str, str]] = field(default_factory=dict)
    """{'a' or 'b': {canonical layer: that model's own layer name}} for a user's model (`parity.checks.live`)."""
    proofs: list[str] = field(default_factory=list)
    """How each user's model was read and proved (`parity.checks.live.Proof.line`)."""

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

    def own_name(self, layer: str | None) -> str | None:
        """The user's own name of a canonical layer, in the model under test (else the reference), if it has one."""
        return next((self.names[s][layer] for s in ("b", "a") if layer in self.names.get(s, {})), None)

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
            first_wrong_layer_own_name=self.own_name(self.first_wrong_layer),
        )
        return data

    def to_json(self, **kwargs: Any) -> str:
        # NaN/inf are not JSON: write them as null so any JSON reader parses the file.
        return json.dumps(json_safe(self.to_dict()), **kwargs)

    def __str__(self) -> str:
        from parity.checks.report import report_text

        return report_text(self)


def _counts(value: Any) -> tuple[int, int, int]:
    """(NaN, inf, size) of an array."""
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating):
        return 0, 0, int(array.size)
    return int(np.isnan(array).sum()), int(np.isinf(array).sum()), int(array.size)


def _said(nan: int, inf: int, size: int) -> str:
    parts = ([f"{nan:,} NaN"] if nan else []) + ([f"{inf:,} inf"] if inf else [])
    return " and ".join(parts) + f" of {size:,}"


def _bad(tensors: Mapping[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {key: found for key, value in tensors.items() if sum((found := _counts(value))[:2])}


def nonfinite_line(
    x: np.ndarray, weights: Mapping[str, Mapping[str, Any]], outputs: Mapping[str, Mapping[str, Any]]
) -> str:
    """One line saying what is not finite (the input, which weight tensors, how many values) and what each model
    made of it (the first stage that is not finite, and how much of its output); "" when everything is finite.

    Args:
        x: the input batch.
        weights: label -> that model's canonical weights.
        outputs: label -> that model's stage outputs, in stage order.
    """
    causes = []
    nan, inf, size = _counts(x)
    if nan or inf:
        causes.append(f"the input holds {_said(nan, inf, size)} values")
    bad = {label: _bad(tensors) for label, tensors in weights.items()}
    shared = len({tuple(sorted(found.items())) for found in bad.values()}) == 1
    for label, found in bad.items():
        if not found:
            continue
        whose = "the weights of both models" if shared and len(bad) > 1 else f"{label}'s weights"
        listed = ", ".join(f"{key} {_said(*counts)}" for key, counts in list(found.items())[:3])
        more = f" and {len(found) - 3} more tensors" if len(found) > 3 else ""
        causes.append(f"{whose}: {listed}{more}")
        if shared:
            break
    made = []
    for label, stages in outputs.items():
        first = next((stage for stage, value in stages.items() if sum(_counts(value)[:2])), None)
        last = list(stages)[-1]
        if first is None:
            made.append(f"{label}: every stage finite")
        else:
            made.append(f"{label}: not finite from {first} on, {last} {_said(*_counts(stages[last]))}")
    if not causes and all(part.endswith("every stage finite") for part in made):
        return ""
    return (
        "not finite: "
        + "; ".join(causes or ["no input or weight (it arises in the computation)"])
        + (" -> " + "; ".join(made))
    )
