"""The framework seam: one `Adapter` object per model backend, made once, asked for by name or by model.

`parity.backends.interface.Adapter` writes the interface down once; `parity.backends.torch.TorchAdapter` and
`parity.backends.keras.KerasAdapter` implement it, each a package split by concern. Everything else in
`parity` calls `adapter(model)` or `adapter_named(name)` and never imports a framework itself. This module
imports none: an adapter (and its framework) is imported when it is first asked for.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parity.backends.interface import Adapter
    from parity.spec import ResNetSpec

ADAPTERS = {"torch": "parity.backends.torch:TorchAdapter", "keras": "parity.backends.keras:KerasAdapter"}
"""Backend name -> its adapter class (`module:Class`), imported on first use."""

BACKENDS = tuple(ADAPTERS)
"""The model backends."""

KERAS_BACKENDS = ("tensorflow", "torch", "jax")
"""The Keras backends the Keras model runs on (each the package of the same name)."""

FRAMEWORK_MODULES = {"torch": ("torch",), "keras": ("keras",)}
"""The modules whose presence in `sys.modules` means a backend's framework is loaded."""

_MADE: dict[str, Adapter] = {}


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


def adapter_named(name: str) -> Adapter:
    """The adapter of a backend by name ('torch' or 'keras'), made on first use; imports that framework."""
    if name not in ADAPTERS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name not in _MADE:
        from parity.core.logs import quiet_imports

        module, _, cls = ADAPTERS[name].partition(":")
        with quiet_imports():  # TensorFlow's start-up block, written from C++ as Keras imports it
            _MADE[name] = getattr(importlib.import_module(module), cls)()
    return _MADE[name]


def adapter(model: Any) -> Adapter:
    """The adapter for a model of either backend."""
    return adapter_named(backend_of(model))


def spec_of(model: Any) -> ResNetSpec:
    """The spec a model of either backend carries (`model.spec`); TypeError for a model built otherwise."""
    from parity.spec import ResNetSpec

    spec = getattr(model, "spec", None)
    if not isinstance(spec, ResNetSpec):
        raise TypeError(f"{type(model).__name__} carries no ResNetSpec (.spec); build it from one")
    return spec


def loaded_backends() -> list[str]:
    """The backends whose framework this process has already imported (nothing is imported here)."""
    return [name for name, modules in FRAMEWORK_MODULES.items() if any(m in sys.modules for m in modules)]
