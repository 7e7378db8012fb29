"""Every deployment runtime on both models of a check, judged against the float64 truth.

A row per (source model, runtime): the model is exported the way the runtime takes it (directly, or through
this project's ONNX file), loaded asking for fp32, run on the check's input and judged by the fp32 rule: its
error against the reference's float64 output within `FP32_NOISE_MULTIPLE` x the reference's own fp32 error.
Beside the verdict: the precision the runtime says it computed in, what its default would have computed in (and
the error that default gives, when it differs), the input shapes it accepts (`probe_shapes`), the file's size
and the milliseconds per batch. A failing row is localised inside the runtime: each unit of the model (stem,
blocks, head) is exported alone through the same route and run on the truth's input to it; the first unit
outside the fp32 rule is named. The whole-graph file is never changed to do so.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter
from parity.backends.runtimes import missing, runtime_named
from parity.backends.runtimes.interface import Runtime, Session, size_of
from parity.checks import localise
from parity.checks.diff import StageDiff
from parity.checks.export import export_onnx, export_unit_onnx, op_histogram
from parity.core import tolerances
from parity.core.errors import one_line
from parity.core.layout import nchw, nhwc
from parity.core.logs import quiet_imports
from parity.core.signals import held

TIMED_RUNS = 5
"""Runs timed per row (after one untimed run); the median is reported."""


@dataclass
class Probe:
    """One input shape a runtime was tried at: refused with an error, or run and judged against the truth."""

    label: str
    shape: list[int]
    max_rel: float | None = None
    ratio: float | None = None
    passed: bool = False
    refused: str = ""


@dataclass
class RuntimeRow:
    """One (source model, runtime) of a check."""

    arch: str
    source: str
    runtime: str
    route: str = ""
    skipped: str = ""
    """Why the row did not run (the runtime is not installed, or does not take this source): not a failure."""
    error: str = ""
    """The export or the load failed: one line naming the runtime and the cause. A failure."""
    diff: StageDiff | None = None
    precision: str = ""
    evidence: str = ""
    default_line: str = ""
    probes: list[Probe] = field(default_factory=list)
    file_bytes: int = 0
    export_seconds: float = 0.0
    ms_per_batch: float | None = None
    units: list[StageDiff] = field(default_factory=list)
    units_note: str = ""
    """Why the unit-by-unit search stopped before a wrong unit (a unit the runtime cannot take alone)."""
    ops: dict[str, int] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        return not self.skipped

    @property
    def wrong_probes(self) -> list[Probe]:
        """Shapes the runtime ran without an error and computed wrongly where it computes the check's input right (a
        refused shape is a limit, not this; a model wrong everywhere is the main verdict's)."""
        if self.diff is None or not self.diff.passed:
            return []
        return [p for p in self.probes if not p.refused and not p.passed]

    @property
    def passed(self) -> bool:
        if self.skipped:
            return True
        return not self.error and self.diff is not None and self.diff.passed and not self.wrong_probes

    @property
    def first_wrong_unit(self) -> str | None:
        return next((u.stage for u in self.units if not u.passed), None)

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "skipped"
        return "ERROR" if self.error else ("PASS" if self.passed else "FAIL")

    def shapes_text(self) -> str:
        """The shapes it accepts, in a few words ('batch 1, 3; 65x65, 66x66' or what it refused)."""
        if not self.probes:
            return "-"
        refused = [p.label for p in self.probes if p.refused]
        wrong = [f"{p.label} wrong ({p.max_rel:.1e})" for p in self.wrong_probes]
        if not refused and not wrong:
            sizes = [p.label for p in self.probes if not p.label.startswith("batch")]
            return "batch 1, 3; " + ", ".join(sizes)
        parts = [f"refuses {', '.join(refused)}"] if refused else []
        return "; ".join(parts + [f"{w} without an error" for w in wrong])

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(passed=self.passed, verdict=self.verdict, first_wrong_unit=self.first_wrong_unit)
        return data


@dataclass
class Truth:
    """The reference's float64 output on one input, and its own fp32 error there (the noise)."""

    x: np.ndarray
    out64: np.ndarray
    out32: np.ndarray

    def judge(self, stage: str, out: np.ndarray) -> StageDiff:
        """`out` against the float64 output by the fp32 rule of `parity.checks.compare` (within FP32_NOISE_MULTIPLE x
        the reference's own fp32 noise, never below FP32_FLOOR), with the runtime in place of the model under test."""
        return StageDiff.against_truth(
            stage, self.out64, self.out32, out, tolerances.FP32_NOISE_MULTIPLE, tolerances.FP32_FLOOR
        )


def truth(reference: Any, x: np.ndarray) -> Truth:
    """The reference model's float64 and fp32 outputs on `x` (NCHW)."""
    side = adapter(reference)
    name = reference.spec.output_name
    with side.float64(reference) as ref64:
        out64 = side.run_stages(ref64, x.astype(np.float64))[name]
    return Truth(x, out64, side.run_stages(reference, x.astype(np.float32))[name])


def probe_shapes(x: np.ndarray) -> dict[str, tuple[int, ...]]:
    """Batch 1 and 3 at the check's size, and batch 1 at an odd and an even size other than it."""
    n, c, h, w = x.shape
    odd, even = (h + 1, h + 2) if h % 2 == 0 else (h + 2, h + 1)
    return {
        "batch 1": (1, c, h, w),
        "batch 3": (3, c, h, w),
        f"{odd}x{odd}": (1, c, odd, odd),
        f"{even}x{even}": (1, c, even, even),
    }


class Route:
    """How one source model reaches one runtime: directly, or through this project's ONNX export."""

    def __init__(self, runtime: Runtime, model: Any, via_onnx: bool):
        self.runtime, self.model, self.via_onnx = runtime, model, via_onnx
        self.side = adapter(model)
        self.source = self.side.NAME

    def text(self) -> str:
        onnx = "torch.onnx" if self.source == "torch" else "Keras export"
        return f"{onnx} -> ONNX -> {self.runtime.LABEL}" if self.via_onnx else self.runtime.ROUTES[self.source]

    def layout(self, x: np.ndarray) -> np.ndarray:
        return nhwc(x) if self.side.LAYOUT == "NHWC" and x.ndim == 4 else x

    def back(self, out: np.ndarray) -> np.ndarray:
        return nchw(out) if self.side.LAYOUT == "NHWC" and out.ndim == 4 else out

    def export(
        self,
        model: Any,
        folder: Path,
        shape: tuple[int, ...],
        unit: bool,
        precision: str = "fp32",
        calibration: list[np.ndarray] | None = None,
    ) -> Path:
        """`model` (the whole model, or a unit of it at a fixed shape) into `folder`; `shape` is NCHW; in `precision`
        where the runtime's converter writes it (`Runtime.CONVERTS`; `calibration` in the source's layout). What the
        converters write to stderr from native code (TFLite's, ExecuTorch's) is silenced; their errors are raised."""
        with quiet_imports(), held():
            if precision != "fp32" and not self.via_onnx:
                layout_shape = self.layout(np.zeros(shape, np.float32)).shape
                return self.runtime.export_lowered(
                    self.source, model, folder, layout_shape, not unit, precision, calibration or []
                )
            return self._export(model, folder, shape, unit)

    def load(self, path: Path, precision: str | None) -> Session:
        with quiet_imports(), held():
            return self.runtime.load(path, precision)

    def _export(self, model: Any, folder: Path, shape: tuple[int, ...], unit: bool) -> Path:
        nhwc_map = self.side.LAYOUT == "NHWC" and len(shape) == 4  # the fc alone takes (N, features) either way
        layout_shape = (shape[0], shape[2], shape[3], shape[1]) if nhwc_map else shape
        if not self.via_onnx:
            return self.runtime.export(self.source, model, folder, layout_shape, not unit)
        if unit:
            path = export_unit_onnx(model, self.side, folder / "unit.onnx", layout_shape)
        else:
            path = export_onnx(model, folder / "model.onnx", height=shape[2], width=shape[3])
        return self.runtime.export("onnx", path, folder, layout_shape, not unit)

    def run(self, session: Session, x: np.ndarray) -> np.ndarray:
        return self.back(np.asarray(session.run(self.layout(x.astype(np.float32)))))


def route(runtime: Runtime, model: Any) -> tuple[Route | None, str]:
    """(the route of `model` to `runtime`, '') or (None, why there is none)."""
    source = adapter(model).NAME
    refusal = runtime.refusal(source)
    if refusal is None:
        return Route(runtime, model, False), ""
    if "onnx" in runtime.TAKES:
        onnx_refusal = adapter(model).onnx_refusal(model.spec)
        return (None, onnx_refusal) if onnx_refusal else (Route(runtime, model, True), "")
    return None, refusal


def runtime_rows(
    names: list[str],
    reference: Any,
    models: list[Any],
    x: np.ndarray,
    progress: Callable[[str], None] | None = None,
) -> list[RuntimeRow]:
    """Every runtime of `names` on every model of `models` (this project's torch and Keras models, same weights).

    Args:
        names: runtime names (`parity.backends.runtimes.RUNTIME_NAMES`).
        reference: the model whose float64 output is the truth (the check's source).
        models: the models to carry to each runtime.
        x: the NCHW input.
        progress: called with a few words before each row.
    """
    spec = reference.spec
    main = truth(reference, x)
    probes = {label: truth(reference, _probe_input(x, shape)) for label, shape in probe_shapes(x).items()}
    unit_trace: list[Any] = []
    rows = []
    for name in names:
        absent = missing(name)
        runtime = None if absent else runtime_named(name)
        for model in models:
            source = adapter(model).NAME
            row = RuntimeRow(spec.name, source, name)
            rows.append(row)
            way, why = (None, absent or "") if runtime is None else route(runtime, model)
            if way is None:
                row.skipped = why
                continue
            row.route = way.text()
            if progress:
                progress(f"{spec.name}: {source} through {row.route}")
            # Ctrl-C is held until the row is done: landing inside a converter's or runtime's native code it
            # crashed the process (measured: a segmentation fault during ExecuTorch's export after OpenVINO ran,
            # leaving the row's folder), where after the row it ends the check as everywhere else.
            with tempfile.TemporaryDirectory(prefix="resnet-parity-runtime-") as folder, held():
                _fill(row, way, main, probes, Path(folder))
                if row.diff is not None and not row.diff.passed:
                    if not unit_trace:
                        unit_trace = _trace(reference, x)
                    row.units, row.units_note = _localise(way, unit_trace, Path(folder))
    return rows


def _probe_input(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A deterministic input of `shape` drawn like `x` (seeded from the shape)."""
    rng = np.random.default_rng(sum(shape))
    return (rng.standard_normal(shape) * float(x.std()) + float(x.mean())).astype(np.float32)


def _fill(row: RuntimeRow, way: Route, main: Truth, probes: dict[str, Truth], folder: Path) -> None:
    runtime = way.runtime
    start = time.perf_counter()
    try:
        path = way.export(way.model, folder, main.x.shape, unit=False)
        row.export_seconds = time.perf_counter() - start
        row.file_bytes = size_of(path)
        session = way.load(path, "fp32")
        out = way.run(session, main.x)
    except Exception as exc:  # each runtime raises its own types; the row says which runtime and what
        row.error = f"{runtime.NAME} from {way.source}: {one_line(exc)}"
        return
    if path.suffix == ".onnx":
        row.ops = dict(op_histogram(path))
    row.precision, row.evidence = session.precision, session.evidence
    row.diff = main.judge(way.model.spec.output_name, out)
    row.ms_per_batch = _milliseconds(session, way, main.x)
    default = runtime.default_precision()
    if default != session.precision:
        fallback = way.load(path, None)
        found = main.judge(way.model.spec.output_name, way.run(fallback, main.x))
        row.default_line = (
            f"{runtime.NAME} computes in {fallback.precision} by default on this machine ({fallback.evidence}): "
            f"its default gives {found.max_rel:.1e} relative at the {way.model.spec.output_name} of {row.arch}, "
            f"{found.ratio:,.0f}x the reference's fp32 noise; this check asks for fp32 and got {session.precision} "
            f"({session.evidence})"
        )
    for label, probe in probes.items():
        shape = list(probe.x.shape)
        try:
            out = way.run(session, probe.x)
        except Exception as exc:  # a runtime fixed to one shape refuses the others with its own error
            row.probes.append(Probe(label, shape, refused=one_line(exc, 120)))
            continue
        judged = probe.judge(way.model.spec.output_name, out)
        row.probes.append(Probe(label, shape, judged.max_rel, judged.ratio, judged.passed))


def _milliseconds(session: Session, way: Route, x: np.ndarray) -> float:
    inp = way.layout(x.astype(np.float32))
    session.run(inp)
    times = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        session.run(inp)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _trace(reference: Any, x: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(unit, float64 input, float64 output, the reference's fp32 output on that input) of every unit."""
    side = adapter(reference)
    with side.float64(reference) as ref64:
        trace = localise.trace_units(
            reference.spec, lambda unit, inp: side.run_unit(ref64, unit, inp), x.astype(np.float64)
        )
    return [(unit, inp, out, side.run_unit(reference, unit, inp.astype(np.float32))) for unit, inp, out in trace]


def _localise(way: Route, trace: list, folder: Path) -> tuple[list[StageDiff], str]:
    """Each unit of the row's model exported alone through the row's route, on the truth's input to it, until the
    first one outside the fp32 rule (the units before it are kept: they show where the error is not); and why the
    search stopped early, if it did."""
    units: list[StageDiff] = []
    for unit, inp, out64, out32 in trace:
        inp32 = inp.astype(np.float32)
        model = way.side.unit_model(way.model, unit)
        place = folder / unit
        place.mkdir()
        try:
            session = way.load(way.export(model, place, inp32.shape, unit=True), "fp32")
            out = way.run(session, inp32)
        except Exception as exc:  # a unit the runtime cannot take alone: said, and the search stops
            return units, f"{unit} could not be exported alone to {way.runtime.NAME}: {one_line(exc, 160)}"
        diff = Truth(inp32, out64, out32).judge(unit, out)
        units.append(diff)
        if not diff.passed:
            break
    return units, ""
