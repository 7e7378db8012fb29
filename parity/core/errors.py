"""Errors every layer may raise, defined below all of them (the adapters raise them too)."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint file cannot be read as asked; the message names the file and what is wrong."""


class Unavailable(Exception):
    """Something cannot run in this process (a runtime, a backend feature); the message says why."""


def one_line(exc: BaseException, limit: int = 240) -> str:
    """An exception as one line for a user: its type and the first line of its message, shortened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
