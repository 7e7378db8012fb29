"""One adapter per framework, with the same function names, dispatched once.

`parity.backends.torch` and `parity.backends.keras` mirror each other like the two models do: weights
in and out, stage, block and layer runs, a float64 view of a model, BatchNorm calibration, device
placement, ONNX export and version strings. Everything else in `parity` calls `adapter(model)` (or
`adapter_named("torch")`) and never branches on the framework itself.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

BACKENDS = ("torch", "keras")


def backend_of(model: Any) -> str:
    """'keras' or 'torch' for a model of ours (or any Keras model / torch module).

    Keras is asked first: under Keras' torch backend a Keras model is also a torch.nn.Module.
    """
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        return "keras"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    raise TypeError(f"expected a resnet_torch or resnet_keras model, got {type(model).__name__}")


def adapter_named(name: str) -> ModuleType:
    """The adapter module of a backend by name ('torch' or 'keras'); imports that framework."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return importlib.import_module(f"parity.backends.{name}")


def adapter(model: Any) -> ModuleType:
    """The adapter module for a model of either backend."""
    return adapter_named(backend_of(model))
