"""Errors every layer may raise, defined below all of them (the adapters raise them too)."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint file cannot be read as asked; the message names the file and what is wrong."""


class Unavailable(Exception):
    """Something cannot run in this process (a runtime, a backend feature); the message says why."""
