"""The Keras adapter: `KerasAdapter`, one class over six concerns (mirrors `parity.backends.torch`).

- `run`: building, weights, running, float64, threads and timing;
- `files`: `.weights.h5`, `.keras` and keras.applications models;
- `export`: ONNX through Keras' own `model.export`;
- `training`: optimizers with torch's rules, steps, their state, the data-parallel engine;
- `naive`: the naive ports the lessons measure;
- `live`: any Keras model read and run as it is (`parity.io.live`).

Nothing else in `parity` imports keras, tensorflow or jax; `parity.backends.adapter_named("keras")` gives the
instance.
"""

from __future__ import annotations

from parity.backends.keras.export import KerasExport, NCHWInput
from parity.backends.keras.files import KerasFiles
from parity.backends.keras.live import KerasLive
from parity.backends.keras.naive import KerasNaive
from parity.backends.keras.run import KerasRun, sublayer
from parity.backends.keras.training import KerasTraining


class KerasAdapter(KerasRun, KerasFiles, KerasExport, KerasTraining, KerasNaive, KerasLive):
    """`parity.backends.interface.Adapter` for resnet_keras models (any Keras backend)."""

    NAME = "keras"


__all__ = ["KerasAdapter", "NCHWInput", "sublayer"]
