"""What commands print: results on stdout, progress on stderr (silenced by --quiet), tables as Markdown."""

from __future__ import annotations

import argparse
import sys
from typing import Any

QUIET: list[bool] = [False]
"""--quiet: no progress on stderr (results and errors still print)."""


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def console(stderr: bool = False) -> Any:
    """The console results (stdout) or progress (stderr, silent with --quiet) print to."""
    from rich.console import Console

    return Console(
        stderr=stderr,
        highlight=False,
        soft_wrap=False,
        width=200 if not sys.stdout.isatty() else None,
        quiet=stderr and QUIET[0],
    )


def to_markdown(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
