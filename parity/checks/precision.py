"""Low precision judged fairly: bf16, fp16 and int8 against the float64 truth and the reference's own error.

A port is right in a low precision when it is as close to the float64 truth as the reference is in that same
precision on the same engine: a Keras bf16 model against torch's bf16 model (both as their users run them: torch
autocast, Keras' mixed policy), Keras' int8 ONNX file against torch's int8 ONNX file quantised the same way. The
verdict is the fp32 rule's (`tolerances.LOW_PRECISION_MULTIPLE`) on that ratio, at the logits, at every unit and at
every layer.

Beside it, what people act on: the top-1 agreement with the fp32 reference and the KL divergence of the
probabilities (on real photographs, `parity.io.photos`), the SNR of each unit fed the truth's input (the unit that
loses most named), and in fp16 the first layer whose activations leave fp16's range, named from the float64
truth with its largest value before any inf reaches the logits.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter
from parity.backends.runtimes import runtime_named
from parity.checks import localise
from parity.checks.engines import Engine, refusal
from parity.core import tolerances
from parity.core.errors import Unavailable, one_line

FP16_MAX = 65504.0
"""The largest finite fp16 value."""
PART_IMAGES = 8
"""Images of the judged batch (and of the calibration images) run unit by unit and layer by layer, and scanned for
fp16's range: the logits and the agreement take every image; the float64 output of every unit is held, which for
resnet50's layer1 at 224 is 8 x 256 x 56 x 56 x 8 bytes (51 MB) per block."""


@dataclass
class UnitLoss:
    """One unit run alone in low precision on the truth's input: its error against the float64 output."""

    unit: str
    rel_rms: float
    ratio: float | None = None
    passed: bool = True

    @property
    def snr_db(self) -> float:
        return math.inf if self.rel_rms == 0 else -20 * math.log10(self.rel_rms)


@dataclass
class PrecisionRow:
    """One model on one engine in one precision, judged against the float64 truth."""

    arch: str
    precision: str
    engine: str
    source: str
    how: str = ""
    reference: bool = False
    skipped: str = ""
    error: str = ""
    seen: str = ""
    """The precision the engine says it computed in, and where that was read."""
    max_rel: float = math.nan
    ref_max_rel: float = math.nan
    ratio: float = math.nan
    finite: bool = True
    snr_db: float = math.nan
    top1: float = math.nan
    kl: float = math.nan
    units: list[UnitLoss] = field(default_factory=list)
    layers: list[UnitLoss] = field(default_factory=list)
    layers_of: str = ""
    """The unit whose layers were run alone: the first beyond the reference's own error, else the one losing most."""
    layers_note: str = ""

    @property
    def worst_layer(self) -> UnitLoss | None:
        """The layer that loses most inside `layers_of` (the first beyond the reference's error, if one is)."""
        wrong = [layer for layer in self.layers if not layer.passed]
        return wrong[0] if wrong else (min(self.layers, key=lambda u: u.snr_db) if self.layers else None)

    @property
    def worst_unit(self) -> UnitLoss | None:
        return min(self.units, key=lambda u: u.snr_db) if self.units else None

    @property
    def wrong_units(self) -> list[str]:
        return [u.unit for u in self.units if not u.passed]

    @property
    def wrong_layers(self) -> list[str]:
        return [layer.unit for layer in self.layers if not layer.passed]

    @property
    def passed(self) -> bool:
        if self.skipped:
            return True
        multiple = tolerances.LOW_PRECISION_MULTIPLE
        wrong = self.wrong_units or self.wrong_layers
        return not self.error and self.finite and self.ratio <= multiple and not wrong

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "skipped"
        return "ERROR" if self.error else ("PASS" if self.passed else "FAIL")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for kind in ("units", "layers"):
            data[kind] = [{**asdict(loss), "snr_db": loss.snr_db} for loss in getattr(self, kind)]
        worst = self.worst_unit
        data.update(
            passed=self.passed, verdict=self.verdict, wrong_units=self.wrong_units, wrong_layers=self.wrong_layers
        )
        data["worst_unit"] = None if worst is None else {"unit": worst.unit, "snr_db": worst.snr_db}
        layer = self.worst_layer
        data["worst_layer"] = None if layer is None else {"layer": layer.unit, "snr_db": layer.snr_db}
        return data


@dataclass
class PrecisionReport:
    """Every row of one precision, and the fp16 range scan."""

    precision: str
    data: str
    rows: list[PrecisionRow] = field(default_factory=list)
    overflow: str = ""
    overflow_layer: str = ""
    overflow_value: float = 0.0

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "data": self.data,
            "multiple": tolerances.LOW_PRECISION_MULTIPLE,
            "overflow": self.overflow,
            "overflow_layer": self.overflow_layer,
            "overflow_value": self.overflow_value,
            "passed": self.passed,
            "rows": [row.to_dict() for row in self.rows],
        }


def max_relative(out: np.ndarray, truth: np.ndarray) -> float:
    """max |out - truth| / max |truth| (inf where `out` is not finite): the fp32 rule's measure."""
    out = np.asarray(out, np.float64)
    if not np.isfinite(out).all():
        return math.inf
    scale = float(np.max(np.abs(truth)))
    return float(np.max(np.abs(out - truth))) / scale if scale else 0.0


def relative_rms(out: np.ndarray, truth: np.ndarray) -> float:
    """||out - truth|| / ||truth|| over the finite positions (inf where `out` is not finite)."""
    out, truth = np.asarray(out, np.float64), np.asarray(truth, np.float64)
    if not np.isfinite(out).all():
        return math.inf
    scale = float(np.sqrt(np.sum(truth**2)))
    return float(np.sqrt(np.sum((out - truth) ** 2))) / scale if scale else 0.0


def agreement(reference32: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """(top-1 agreement with the fp32 reference, mean KL divergence of its softmax from the reference's)."""
    ref, low = np.asarray(reference32, np.float64), np.asarray(out, np.float64)
    if not np.isfinite(low).all():
        return float(np.mean(ref.argmax(1) == np.nan_to_num(low).argmax(1))), math.inf
    log_p = ref - ref.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    log_q = low - low.max(1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(1, keepdims=True))
    kl = float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=1)))
    return float(np.mean(ref.argmax(1) == low.argmax(1))), kl


def fp16_overflow(reference: Any, x: np.ndarray) -> tuple[str, float]:
    """(the first layer or unit whose float64 output leaves fp16's range on `x`, its largest |value|), or ('', max)."""
    side, spec = adapter(reference), reference.spec
    largest = 0.0
    with side.float64(reference) as ref64:
        run = lambda name, inp: side.run_unit(ref64, name, inp)  # noqa: E731 - one call, twice below
        out = x.astype(np.float64)
        for unit in localise.unit_names(spec):
            for layer, _, value in localise.trace_layers(spec, run, unit, out):
                peak = float(np.max(np.abs(value)))
                largest = max(largest, peak)
                if peak > FP16_MAX:
                    return layer, peak
            out = run(unit, out)
            peak = float(np.max(np.abs(out)))
            largest = max(largest, peak)
            if peak > FP16_MAX:
                return unit, peak
    return "", largest


class Truth:
    """The reference's float64 outputs on the judged images, unit by unit (and layer by layer where asked), its fp32
    logits, and each unit's fp32 inputs on the calibration images (int8's ranges for a unit or layer alone)."""

    def __init__(self, reference: Any, x: np.ndarray, calibration: np.ndarray, int8: bool):
        self.reference, self.side, self.spec = reference, adapter(reference), reference.spec
        with self.side.float64(reference) as ref64:
            self.logits = self.side.run_stages(ref64, x.astype(np.float64))[self.spec.output_name]
            self.units = localise.trace_units(self.spec, self._runner(ref64), x[:PART_IMAGES].astype(np.float64))
        self.ref32 = self.side.run_stages(reference, x.astype(np.float32))[self.spec.output_name]
        self.calibration: dict[str, list[np.ndarray]] = {}
        n = min(len(x), PART_IMAGES)
        parts = [calibration[i : i + n] for i in range(0, len(calibration) - n + 1, n)]
        if int8 and not parts:
            raise ValueError(f"int8 needs at least {n} calibration images, got {len(calibration)}")
        for chunk in parts if int8 else []:  # the shape of the units' inputs above: each unit's file is fixed to it
            for unit, inp, _ in localise.trace_units(self.spec, self._runner(reference), chunk):
                self.calibration.setdefault(unit, []).append(inp.astype(np.float32))

    def _runner(self, model: Any) -> Callable[[str, np.ndarray], np.ndarray]:
        return lambda name, inp: self.side.run_unit(model, name, inp)

    def layers(
        self, unit: str, int8: bool
    ) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], dict[str, list[np.ndarray]]]:
        """(layer, float64 input, float64 output) of every layer of `unit` on the first `PART_IMAGES` images, and each
        layer's fp32 inputs on the calibration images."""
        inp = next(i for name, i, _ in self.units if name == unit)[:PART_IMAGES]
        with self.side.float64(self.reference) as ref64:
            steps = localise.trace_layers(self.spec, self._runner(ref64), unit, inp)
        # In int8 the quantiser folds each BatchNorm into its convolution: the layers of the file are the weighted ones.
        if int8:
            shapes = self.side.get_shapes(self.reference)
            steps = [step for step in steps if len(shapes.get(f"{step[0]}.weight", ())) >= 2]
        calibration: dict[str, list[np.ndarray]] = {}
        for batch in self.calibration.get(unit, []):
            for layer, layer_inp, _ in localise.trace_layers(self.spec, self._runner(self.reference), unit, batch):
                calibration.setdefault(layer, []).append(layer_inp)
        return steps, calibration


def precision_rows(
    precision: str,
    reference: Any,
    models: list[Any],
    x: np.ndarray,
    calibration: np.ndarray,
    engines: list[str],
    data: str,
    progress: Callable[[str], None] | None = None,
) -> PrecisionReport:
    """Both models in `precision` on every engine, each judged against the float64 truth and the reference's own
    error on the same engine in the same precision; inside the first unit beyond it (or the unit that loses most),
    every layer alone.

    Args:
        precision: 'bf16', 'fp16' or 'int8'.
        reference: the model whose float64 output is the truth (the check's source); one of `models`.
        models: this project's torch and Keras models of one network, same weights.
        x: the NCHW batch judged (the photographs by default).
        calibration: NCHW images int8's activation ranges are calibrated on (other images than `x`).
        engines: 'frameworks' (each model in its own framework) and runtime names.
        data: what `x` is, in words, for the report.
        progress: called with a few words before each row.
    """
    spec = reference.spec
    report = PrecisionReport(precision, data)
    if precision == "fp16":
        layer, value = fp16_overflow(reference, x[:PART_IMAGES])
        report.overflow_layer, report.overflow_value = layer, value
        report.overflow = (
            f"fp16: {layer} leaves fp16's range first: its largest |value| is {value:,.0f} in float64 (fp16 holds "
            f"{FP16_MAX:,.0f}); keep it in fp32 or bf16, or rescale it"
            if layer
            else f"fp16: every activation stays within fp16's range (largest |value| {value:,.1f} of {FP16_MAX:,.0f})"
        )
    truth = Truth(reference, x, calibration, precision == "int8")
    others = [m for m in models if m is not reference]
    for engine in engines:
        names = [adapter(m).NAME for m in (reference, *others)] if engine == "frameworks" else [engine] * len(models)
        ref_row: PrecisionRow | None = None
        ref_engine: Engine | None = None
        for index, (name, model) in enumerate(zip(names, (reference, *others))):
            row = PrecisionRow(spec.name, precision, name, adapter(model).NAME, reference=model is reference)
            report.rows.append(row)
            why = refusal(precision, name)
            if why:  # the engine itself cannot: the same line for every model
                row.skipped = why
                continue
            if index and (ref_row is None or ref_engine is None or ref_row.skipped or ref_row.error):
                row.skipped = (
                    f"not judged: the reference ({adapter(reference).NAME}) did not run in {precision} on {name}, "
                    "and a row is judged against the reference on its own engine"
                )
                continue
            if progress:
                progress(f"{spec.name}: {row.source} in {precision} on {name}")
            runner = Engine(precision, model, None if name in ("torch", "keras") else runtime_named(name))
            with tempfile.TemporaryDirectory(prefix="resnet-parity-precision-") as folder:
                _fill(row, runner, Path(folder), x, [calibration], truth)
            if index == 0:
                ref_row, ref_engine = row, runner
            if row.skipped or row.error or ref_row is None or ref_engine is None:
                continue
            _judge(row, ref_row)
            with tempfile.TemporaryDirectory(prefix="resnet-parity-precision-") as folder:
                _descend(row, runner, ref_row, ref_engine, truth, Path(folder))
    return report


def _losses(engine: Engine, steps: list, calibration: dict, folder: Path) -> list[UnitLoss]:
    """Each (name, float64 input, float64 output) of `steps` run alone by `engine`: its error against the output."""
    losses = []
    for index, (name, inp, out64) in enumerate(steps):
        place = folder / f"{index}-{name}"
        try:
            run = engine.runner(name, inp.shape, calibration.get(name, []), place)
            losses.append(UnitLoss(name, relative_rms(run(inp.astype(np.float32)), out64)))
        except Exception as exc:  # a unit or layer the engine cannot take alone: said, and the search stops there
            raise ValueError(f"{name} could not be run alone: {one_line(exc, 160)}") from None
    return losses


def _fill(row: PrecisionRow, engine: Engine, folder: Path, x: np.ndarray, chunks: list, truth: Truth) -> None:
    try:
        row.how = engine.how()
        run = engine.runner(engine.model, x.shape, chunks, folder / "model")
        out = np.asarray(run(x.astype(np.float32)), np.float64)
        row.seen = engine.seen or f"{row.precision} ({row.how})"
        row.finite = bool(np.isfinite(out).all())
        row.max_rel = max_relative(out, truth.logits)
        rms = relative_rms(out, truth.logits)
        row.snr_db = math.inf if rms == 0 else -20 * math.log10(rms)
        row.top1, row.kl = agreement(truth.ref32, out)
        row.units = _losses(engine, truth.units, truth.calibration, folder / "units")
    except Unavailable as exc:  # the engine cannot compute in this precision here: said, not a failure
        row.skipped = str(exc)
    except Exception as exc:  # each converter and runtime raises its own types; the row names which and why
        row.error = f"{row.engine} in {row.precision} from {row.source}: {one_line(exc)}"


def _descend(
    row: PrecisionRow, engine: Engine, ref: PrecisionRow, ref_engine: Engine, truth: Truth, folder: Path
) -> None:
    """Every layer alone, beside the reference's same layers: in every unit for a framework (cheap), inside the first
    unit beyond the reference's error (else the one losing most) for a runtime (each layer is a file of its own)."""
    units = [unit for unit, _, _ in truth.units]
    if engine.runtime is not None:
        units = (row.wrong_units or [row.worst_unit.unit if row.worst_unit else ""])[:1]
    units = [unit for unit in units if unit]
    own = {layer.unit: layer for layer in ref.layers}
    try:
        for index, unit in enumerate(units):
            steps, calibration = truth.layers(unit, row.precision == "int8")
            row.layers += _losses(engine, steps, calibration, folder / f"row{index}")
            if row is not ref and any(step[0] not in own for step in steps):
                ref.layers += _losses(ref_engine, steps, calibration, folder / f"ref{index}")
                own = {layer.unit: layer for layer in ref.layers}
    except ValueError as exc:
        row.layers_note = str(exc)
    row.layers_of = "every unit" if engine.runtime is None else ", ".join(units)
    if row is not ref:
        for loss in row.layers:
            if loss.unit in own:
                _ratio(loss, own[loss.unit])


def _ratio(loss: UnitLoss, base: UnitLoss) -> None:
    """`loss` as a multiple of the reference's own on the same unit or layer, judged by the multiple."""
    loss.ratio = loss.rel_rms / max(base.rel_rms, tolerances.FP32_FLOOR) if math.isfinite(loss.rel_rms) else math.inf
    loss.passed = loss.ratio <= tolerances.LOW_PRECISION_MULTIPLE


def _judge(row: PrecisionRow, ref: PrecisionRow) -> None:
    """The row's error as a multiple of the reference's own on the same engine (the reference row: 1)."""
    if row.error or ref.error or row.skipped:
        return
    row.ref_max_rel = ref.max_rel
    row.ratio = row.max_rel / max(ref.max_rel, tolerances.FP32_FLOOR) if row.finite else math.inf
    by_unit = {u.unit: u for u in ref.units}
    for unit in row.units:
        if unit.unit in by_unit:
            _ratio(unit, by_unit[unit.unit])
