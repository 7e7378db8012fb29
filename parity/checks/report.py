"""Readable text of a parity report: the verdicts, the per-stage table, the first wrong block and layer."""

from __future__ import annotations

from typing import Any

from parity.core.formatting import fmt_sci


def _table(columns: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells: list[str]) -> str:
        return "  " + "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths))
        )

    return [line(columns)] + [line(r) for r in rows]


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _ratio(value: float | None) -> str:
    return "-" if value is None else ("inf" if value == float("inf") else f"{value:.1f}x")


def report_text(report: Any) -> str:
    """What `str(report)` prints: enough to act on without opening the JSON."""
    shape = "x".join(map(str, report.input_shape))
    lines = [f"{report.a} vs {report.b}, {report.arch}, input {shape}: {_verdict(report.passed)}"]
    if report.nonfinite:  # said first: what it says makes every figure below moot
        lines.append(f"  {report.nonfinite}")
    lines += [f"  {line}" for line in report.proofs]
    if report.provenance:
        from parity.core.provenance import header

        lines.append(f"  ({header(report.provenance)})")
    if report.float64:
        lines.append(
            f"  port (float64, end to end and each unit alone): {_verdict(report.port_passed)}, "
            f"worst {fmt_sci(report.port_max_rel)} (tolerance FP64={report.float64_stages[0].tolerance:.0e})"
        )
    else:
        lines.append(f"  port: {_verdict(report.port_passed)}; {report.float64_note}")
    if report.tolerance_name == "FP32_NOISE_MULTIPLE":
        lines.append(
            f"  fp32: {_verdict(report.fp32_passed)}, worst {_ratio(report.worst_ratio)} "
            f"{report.a}'s own fp32 noise (tolerance {report.tolerance:g}x)"
        )
    else:
        lines.append(f"  fp32: {_verdict(report.fp32_passed)} against {report.tolerance_name}={report.tolerance:.0e}")
    columns = ["stage", "float64 max rel", "fp32 max rel", f"{report.a} fp32 noise", "ratio", "verdict"]
    f64 = {s.stage: s for s in report.float64_stages}
    rows = []
    for s in report.stages:
        d64 = f64.get(s.stage)
        ok = s.passed and (d64 is None or d64.passed)
        nan = f" ({s.nan_mismatch} NaN + {s.inf_mismatch} inf mismatched)" if s.nan_mismatch or s.inf_mismatch else ""
        rows.append(
            [
                s.stage,
                fmt_sci(d64.max_rel) if d64 else "-",
                fmt_sci(s.max_rel) + nan,
                fmt_sci(s.noise) if s.noise is not None else "-",
                _ratio(s.ratio),
                _verdict(ok),
            ]
        )
    lines += _table(columns, rows)
    if report.blocks:
        wrong = [s for s in report.blocks if not s.passed]
        worst = max(report.blocks, key=lambda s: s.max_rel if s.max_rel == s.max_rel else float("inf"))
        lines.append(
            f"  units alone ({report.blocks_dtype}, each on {report.a}'s input): {len(report.blocks)} "
            f"checked, worst {worst.stage} {fmt_sci(worst.max_rel)}"
            + (
                f"; {len(wrong)} wrong: " + ", ".join(s.stage for s in wrong[:8]) + (" ..." if len(wrong) > 8 else "")
                if wrong
                else ""
            )
        )
    if report.first_wrong_block:
        layer = report.first_wrong_layer
        own = report.own_name(layer)
        where = (f"{layer} ({own!r} in the model under test)" if own else layer) or (
            "no single layer: the unit's wiring (ReLU, residual add) differs"
        )
        lines.append(f"  first wrong block: {report.first_wrong_block}; first wrong layer: {where}")
        rows = [[s.stage, fmt_sci(s.max_rel), _verdict(s.passed)] for s in report.layers]
        lines += _table(["layer", f"max rel ({report.blocks_dtype})", "verdict"], rows)
    return "\n".join(lines)
