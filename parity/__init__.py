"""resnet-parity: one ResNet spec, two backends, and the checks that prove they agree.

`import parity` imports no framework: the functions below are loaded on first use, and they import
a framework only when called.
"""

from __future__ import annotations

import importlib
from typing import Any

from parity.spec import ARCHS, VARIANTS, ResNetSpec, make_spec

_LAZY = {
    "get_weights": "parity.io.weights",
    "set_weights": "parity.io.weights",
    "copy_weights": "parity.io.weights",
    "random_weights": "parity.io.weights",
    "compare": "parity.checks.compare",
    "load_checkpoint": "parity.io.checkpoints",
    "save_checkpoint": "parity.io.checkpoints",
    "load_model": "parity.io.checkpoints",
    "assert_parity": "parity.testing",
    "port": "parity.checks.live",
}

__all__ = ["ARCHS", "VARIANTS", "ResNetSpec", "make_spec", *_LAZY]


def _version() -> str:
    """The installed distribution's version: pyproject.toml is the one place it is written."""
    from importlib import metadata

    try:
        return metadata.version("resnet-parity")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


__version__ = _version()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'parity' has no attribute {name!r}")
