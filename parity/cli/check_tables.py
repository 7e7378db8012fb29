"""The tables `resnet-parity check` prints: one row per direction and training run; the runtimes; the op table."""

from __future__ import annotations

import math
from typing import Any

from parity.core.formatting import fmt_sci


def check_table_rows(results: list[Any]) -> list[list[str]]:
    rows = []
    for r in results:
        p = r.params
        native = r.report
        rows.append(
            [
                r.arch,
                r.direction,
                f"{p.spec:,} / {p.torch:,} / {p.keras:,}",
                "x".join(map(str, r.output_shape)),
                fmt_sci(native.port_max_rel) if native.float64 else "off",
                fmt_sci(native.logits.max_rel) if native.logits.finite else "not finite",
                f"{native.worst_ratio:.1f}x"
                if native.float64 and native.tolerance_name == "FP32_NOISE_MULTIPLE"
                else "-",
                native.first_wrong or "-",
                "PASS" if p.equal and native.passed else "FAIL",
                f"{r.seconds:.1f}",
            ]
        )
        if r.train is not None:
            t = r.train
            failed = [d.stage for d in t.loss + t.grads + [t.weights, t.running] if not d.passed]
            worst = max(t.loss + t.grads + [t.weights, t.running], key=lambda d: d.max_rel)
            rows.append(
                [
                    r.arch,
                    f"train {t.steps} SGD steps (float64)",
                    "",
                    f"{t.config['batch']}x{t.config['size'][0]}x{t.config['size'][1]}",
                    fmt_sci(worst.max_rel),
                    "-",
                    "-",
                    failed[0] if failed else "-",
                    "PASS" if t.passed else "FAIL",
                    f"{t.seconds:.1f}",
                ]
            )
    return rows


BN_OPS = ("BatchNormalization", "Sub", "Div", "Sqrt", "Mul")
"""Ops a graph computes an unfolded BatchNorm with (as one node, or as arithmetic)."""


def bn_form(counts: dict[str, int]) -> str:
    """How a graph holds its BatchNorms, read off its op counts (never assumed)."""
    found = {op: counts[op] for op in BN_OPS if counts.get(op)}
    if not found:
        return "folded into the convs"
    return "computed as " + ", ".join(f"{n} {op}" for op, n in found.items())


def op_table_rows(ops: dict[str, dict[str, int]]) -> list[list[str]]:
    """Op type, count in each ONNX graph; ops present in only one graph first."""
    labels = list(ops)
    names = sorted(
        {op for counts in ops.values() for op in counts},
        key=lambda op: (len({label for label in labels if op in ops[label]}) == len(labels), op),
    )
    return [[op] + [str(ops[label].get(op, 0)) for label in labels] for op in names]


CHECK_COLUMNS = [
    "arch",
    "direction",
    "params spec / torch / keras",
    "output",
    "port: float64 max rel",
    "fp32 logits max rel",
    "fp32 / noise",
    "first wrong",
    "verdict",
    "seconds",
]
VERDICT_COLUMN = CHECK_COLUMNS.index("verdict")


RUNTIME_COLUMNS = [
    "arch",
    "model",
    "route",
    "max rel vs float64",
    "/ noise",
    "verdict",
    "computed in",
    "input shapes",
    "file MB",
    "ms / batch",
    "first wrong unit",
]


def runtime_table_rows(results: list[Any]) -> list[list[str]]:
    """One row per (model, runtime) that ran; skipped ones are said in `runtime_lines`."""
    rows = []
    for r in results:
        for row in r.runtimes:
            if row.skipped:
                continue
            d = row.diff
            rows.append(
                [
                    row.arch,
                    row.source,
                    row.route,
                    fmt_sci(d.max_rel) if d else "-",
                    f"{d.ratio:.1f}x" if d and d.ratio is not None else "-",
                    row.verdict,
                    row.precision or "-",
                    row.shapes_text(),
                    f"{row.file_bytes / 1e6:.2f}" if row.file_bytes else "-",
                    f"{row.ms_per_batch:.2f}" if row.ms_per_batch is not None else "-",
                    row.first_wrong_unit or ("-" if row.passed or row.error or row.wrong_probes else "not found"),
                ]
            )
    return rows


def runtime_lines(results: list[Any]) -> list[str]:
    """What the runtime table cannot hold: errors, rows skipped and why, lower-precision defaults, the unit search."""
    lines: list[str] = []
    for r in results:
        for row in r.runtimes:
            if row.error:
                lines.append(f"{row.arch} {row.source} -> {row.runtime}: {row.error}")
            elif row.skipped:
                lines.append(f"{row.arch} {row.source} -> {row.runtime}: skipped, {row.skipped}")
            if row.default_line:
                lines.append(f"{row.arch} {row.source} -> {row.default_line}")
            if row.units:
                found = ", ".join(f"{u.stage} {u.max_rel:.1e} ({u.ratio:.1f}x)" for u in row.units)
                lines.append(f"{row.arch} {row.source} -> {row.runtime}, each unit alone on the truth's input: {found}")
            if row.units_note:
                lines.append(f"{row.arch} {row.source} -> {row.runtime}: {row.units_note}")
    return list(dict.fromkeys(lines))


PRECISION_COLUMNS = [
    "arch",
    "model",
    "engine",
    "computes in",
    "max rel vs float64",
    "reference's",
    "/ reference",
    "verdict",
    "SNR dB",
    "top-1 agree",
    "KL",
    "loses most: unit, layer (SNR dB)",
]


def _snr(loss: Any, unit: str = " dB") -> str:
    """'layer2.0 (SNR 25.2 dB)', or '(not finite)'; in the table without the unit."""
    if loss.snr_db > -1e9:
        return f"{loss.unit} ({'SNR ' if unit else ''}{loss.snr_db:.1f}{unit})"
    return f"{loss.unit} (not finite)"


def precision_table_rows(results: list[Any]) -> list[list[str]]:
    """One row per (model, engine) of the low-precision pass (rows skipped are said below the table instead)."""
    rows = []
    for r in results:
        report = r.precision
        for row in [] if report is None else report.rows:
            if row.skipped:
                continue
            worst, layer = row.worst_unit, row.worst_layer
            rows.append(
                [
                    row.arch,
                    row.source + (" (reference)" if row.reference else ""),
                    row.engine,
                    row.seen.split(" (")[0] or row.precision,
                    fmt_sci(row.max_rel) if row.finite else "not finite",
                    fmt_sci(row.ref_max_rel),
                    f"{row.ratio:.2f}x" if row.finite else "-",
                    row.verdict,
                    f"{row.snr_db:.1f}" if row.finite else "-",
                    f"{row.top1:.0%}",
                    f"{row.kl:.1e}",
                    ", ".join(_snr(loss, "") for loss in (worst, layer) if loss is not None) or "-",
                ]
            )
    return rows


def precision_lines(results: list[Any]) -> list[str]:
    """What the precision table cannot hold: how each engine ran, rows skipped, errors, failing units, fp16's range."""
    lines: list[str] = []
    for r in results:
        report = r.precision
        if report is None:
            continue
        if report.overflow:
            lines.append(f"{r.arch}: {report.overflow}")
        for row in report.rows:
            where = f"{row.arch} {row.source} in {row.precision} on {row.engine}"
            if row.skipped and not row.skipped.startswith("not judged"):  # the engine's own line, said once
                lines.append(f"{row.arch} in {row.precision} on {row.engine}: skipped, {row.skipped}")
                continue
            if row.skipped or row.error:
                lines.append(f"{where}: {'skipped, ' + row.skipped if row.skipped else row.error}")
                continue
            lines.append(f"{where}: {row.how}" + ("" if row.how in row.seen else f"; computed in {row.seen}"))
            for kind, losses in (("units", row.units), ("layers", row.layers)):
                lost = ", ".join(u.unit for u in losses if not math.isfinite(u.rel_rms))
                found = ", ".join(
                    f"{u.unit} {u.ratio:.1f}x" for u in losses if not u.passed and math.isfinite(u.rel_rms)
                )
                if lost:
                    lines.append(f"{where}: {kind} whose output is not finite in {row.precision}: {lost}")
                if found:
                    lines.append(f"{where}: {kind} beyond the reference's own {row.precision} error there: {found}")
            worst, layer = row.worst_unit, row.worst_layer
            if worst is not None and not row.reference:
                inside = (
                    f"; inside it, {_snr(layer)}" if layer is not None and layer.unit.startswith(worst.unit) else ""
                )
                lines.append(f"{where}: {_snr(worst)} loses most of the units, each fed the truth's input{inside}")
            if row.layers_note:
                lines.append(f"{where}: {row.layers_note}")
    return list(dict.fromkeys(lines))


def precision_title(report: Any) -> str:
    from parity.core.tolerances import LOW_PRECISION_MULTIPLE

    return (
        f"{report.precision}: each model against the float64 truth, as a multiple of the reference's own {report.precision} "
        f"error on the same engine (PASS within {LOW_PRECISION_MULTIPLE:g}x, at the logits and every unit); top-1 "
        f"agreement and KL against the fp32 reference; on {report.data}"
    )


def print_precision(console: Any, results: list[Any]) -> list[list[str]]:
    """Print the low-precision table and its lines (nothing without a low-precision pass); its rows."""
    from rich.table import Table

    rows = precision_table_rows(results)
    if rows:
        table = Table(title=precision_title(next(r.precision for r in results if r.precision)))
        for col in PRECISION_COLUMNS:
            table.add_column(col, justify="left" if col in PRECISION_COLUMNS[:4] + ["verdict"] else "right")
        for row in rows:
            table.add_row(*row, style=None if row[PRECISION_COLUMNS.index("verdict")] == "PASS" else "red")
        console.print(table)
    for line in precision_lines(results):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return rows
