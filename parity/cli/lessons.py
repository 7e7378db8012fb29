"""`resnet-parity lessons`: measure every PyTorch/Keras difference, a naive port beside the correct one."""

from __future__ import annotations

import argparse
import json
from typing import Any

from parity.cli import options, output
from parity.core.formatting import fmt_sci


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_arch(p)
    options.add_size(p, default=64, help="even input size >= 8 (odd cases use size + 1)", even=True)
    options.add_device(p)
    options.add_seed(p)
    options.add_spec_overrides(p)
    p.add_argument("--train-steps", type=options.positive, default=3, help="SGD steps for the training lessons")
    p.add_argument("--only", help="comma list of lesson keys (default: all)")
    options.add_json(p)
    p.add_argument("--plot", metavar="PNG", help="plot per-stage drift of the naive ports")
    p.add_argument("--docs", metavar="MD", help="write the framework-differences page (Markdown)")


LESSON_COLUMNS = [
    "difference",
    "case",
    "handled in",
    "naive: max abs",
    "naive: max rel",
    "naive: first divergent",
    "correct: max rel",
    "tolerance",
    "verdict",
]


def lesson_rows(findings: list[Any]) -> list[list[str]]:
    rows = []
    for f in findings:
        if f.naive is None:
            rows.append([f.title, f.case, f.handled, "-", "-", "-", "-", f"{f.tolerance:.0e}", f"skipped: {f.skipped}"])
            continue
        if not f.correct_ok:
            verdict = "CORRECT PORT DRIFTS"
        else:
            verdict = "matters: caught" if f.caught else "harmless here"
        rows.append(
            [
                f.title,
                f.case,
                f.handled,
                fmt_sci(f.naive.max_abs),
                fmt_sci(f.naive.max_rel),
                f.naive.first_divergent or "-",
                fmt_sci(f.correct.max_rel),
                f"{f.tolerance:.0e}",
                verdict,
            ]
        )
    return rows


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.checks.lessons import run_lessons
    from parity.core.files import atomic_write_text, check_target

    options.require_device(args.device)
    for path in (args.json, args.docs, args.plot):
        if path:
            check_target(path, force=True)
    only = [k.strip() for k in args.only.split(",")] if args.only else None
    with output.step("measuring") as say:
        findings = run_lessons(
            args.arch,
            args.size,
            args.device,
            args.seed,
            only,
            args.train_steps,
            progress=say,
            spec=options.spec_from_args(args.arch, args),
        )
    table = Table(
        title=f"{args.arch}: each difference left unhandled in the Keras port, measured against torch "
        f"({args.device}, {args.size}x{args.size}, seed {args.seed})"
    )
    for col in LESSON_COLUMNS:
        table.add_column(col, justify="right" if "max" in col or col == "tolerance" else "left")
    rows = lesson_rows(findings)
    for row in rows:
        table.add_row(*row, style="red" if row[-1] == "CORRECT PORT DRIFTS" else None)
    output.console().print(table)
    command = "resnet-parity " + " ".join(args.argv)
    if args.json:
        from dataclasses import asdict

        from parity.core.formatting import json_safe

        payload = {
            "command": command,
            "findings": [{**asdict(f), "caught": f.caught, "correct_ok": f.correct_ok} for f in findings],
        }
        atomic_write_text(args.json, json.dumps(json_safe(payload), indent=2) + "\n")
    if args.plot:
        from parity.checks.docs import plot_lessons

        plot_lessons(findings, args.plot, title=f"{args.arch}, {args.size}x{args.size}: per-stage drift from torch")
    if args.docs:
        from parity.checks.docs import lessons_markdown

        atomic_write_text(args.docs, lessons_markdown(findings, LESSON_COLUMNS, rows, command, args.plot))
    return 0 if all(f.correct_ok for f in findings) else 1
