"""argparse value types of the options (`parity.cli.options` declares the options with them)."""

from __future__ import annotations

import argparse

from parity.backends import BACKENDS


def positive(text: str) -> int:
    if int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {int(text)}")
    return int(text)


def non_negative(text: str) -> int:
    if int(text) < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {int(text)}")
    return int(text)


def even_size(text: str) -> int:  # the lessons also run at size + 1, to make every stride-2 input odd
    value = positive(text)
    if value < 8 or value % 2:
        raise argparse.ArgumentTypeError(f"must be an even number >= 8 (odd-size lessons use size + 1), got {value}")
    return value


def device(text: str) -> str:
    if text == "cpu" or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")


def backend_list(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown backend(s) {', '.join(map(repr, unknown))}; "
            f"use a comma list of {', '.join(BACKENDS)} (or '' for none)"
        )
    return names
