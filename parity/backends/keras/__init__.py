"""The Keras adapter: `KerasAdapter`, one class over five concerns (mirrors `parity.backends.torch`).

- `run`: building, weights, running, float64, threads and timing;
- `files`: `.weights.h5`, `.keras` and keras.applications models;
- `export`: ONNX through Keras' own `model.export`;
- `training`: optimizers with torch's rules, steps, their state, the data-parallel engine;
- `naive`: the naive ports the lessons measure.

Nothing else in `parity` imports keras, tensorflow or jax; `parity.backends.adapter_named("keras")` gives the
instance.
"""

from __future__ import annotations

from parity.backends.keras.export import KerasExport, NCHWInput
from parity.backends.keras.files import KerasFiles
from parity.backends.keras.naive import KerasNaive
from parity.backends.keras.run import KerasRun, sublayer
from parity.backends.keras.training import KerasTraining


class KerasAdapter(KerasRun, KerasFiles, KerasExport, KerasTraining, KerasNaive):
    """`parity.backends.interface.Adapter` for resnet_keras models (any Keras backend)."""

    NAME = "keras"


__all__ = ["KerasAdapter", "NCHWInput", "sublayer"]
