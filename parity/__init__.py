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
}

__all__ = ["ARCHS", "VARIANTS", "ResNetSpec", "make_spec", *_LAZY]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'parity' has no attribute {name!r}")
