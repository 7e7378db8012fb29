"""One adapter per framework, with the same function names, dispatched once.

`parity.backends.torch` and `parity.backends.keras` mirror each other like the two models do; the
functions each owes are written down once, in `parity.backends.protocol.Adapter`. Everything else in
`parity` calls `adapter(model)` or `adapter_named(name)` and never imports a framework itself. This
module imports none: an adapter (and its framework) is imported when it is first asked for.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

BACKENDS = ("torch", "keras")
"""The model backends, each with its adapter module `parity.backends.<name>`."""

KERAS_BACKENDS = ("tensorflow", "torch", "jax")
"""The Keras backends the Keras model runs on (each the package of the same name)."""

FRAMEWORK_MODULES = {"torch": ("torch",), "keras": ("keras",)}
"""The modules whose presence in `sys.modules` means a backend's framework is loaded."""


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


def loaded_backends() -> list[str]:
    """The backends whose framework this process has already imported (nothing is imported here)."""
    return [name for name, modules in FRAMEWORK_MODULES.items() if any(m in sys.modules for m in modules)]
