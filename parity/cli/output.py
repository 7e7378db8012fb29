"""What commands print: results on stdout, progress on stderr (silenced by --quiet), tables as Markdown."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

QUIET: list[bool] = [False]
"""--quiet: no progress on stderr (results and errors still print)."""


def add_verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", action="store_true", help="let the frameworks print their own start-up and log lines")


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


@contextlib.contextmanager
def step(text: str) -> Iterator[Callable[[str], None]]:
    """One step of a long command on stderr: a spinner on a terminal, a plain line where stderr is a file or a CI log
    (so a log never sits silent for minutes); nothing with --quiet. Yields `say(text)`, for the step's parts."""
    err = console(stderr=True)
    if err.is_terminal:
        with err.status(text) as status:
            yield lambda part: status.update(f"{text}: {part}")
        return
    err.print(f"{text} ...", markup=False, soft_wrap=True)
    yield lambda part: err.print(f"{text}: {part} ...", markup=False, soft_wrap=True)
