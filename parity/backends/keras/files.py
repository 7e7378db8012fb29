"""`.weights.h5` and `.keras` files, and keras.applications models (mirrors `parity.backends.torch.files`)."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

import resnet_keras
from parity.backends.interface import Adapter
from parity.core.errors import CheckpointError
from parity.spec import ResNetSpec


class KerasFiles(Adapter):
    """The checkpoint formats Keras reads and writes itself; `.keras` files load with safe_mode."""

    NATIVE_FORMATS = ("keras-weights", "keras")

    def read_native(
        self, fmt: str, path: Path, spec: ResNetSpec | None
    ) -> tuple[ResNetSpec | None, dict[str, np.ndarray]]:
        """(the spec the file holds, canonical weights) of a `.weights.h5` (needs `spec`) or `.keras` file.

        A `.keras` file loads with safe_mode (no arbitrary code) and must hold a resnet_keras.ResNet.
        """
        if fmt == "keras-weights":
            if spec is None:  # a weights file names no layer's shape: the model it loads into must exist first
                raise CheckpointError(f"{path}: a .weights.h5 file holds no architecture; give the spec (--arch)")
            model = self.build(spec)
            model.load_weights(str(path))
            return spec, self.get_weights(model)
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path} is not a .keras archive (truncated or not a zip file)")
        model = keras.models.load_model(path, compile=False, safe_mode=True)
        if not isinstance(model, resnet_keras.ResNet):
            raise CheckpointError(f"{path} holds a {type(model).__name__}, not a resnet_keras.ResNet")
        return model.spec, self.get_weights(model)

    def keras_applications_model(
        self, constructor: str, num_classes: int, in_channels: int, path: Path | None = None, pooling: str | None = None
    ) -> Any:
        """A keras.applications ResNet (logits head, or none with num_classes 0), with a `.weights.h5` loaded if given.

        Args:
            constructor: its keras.applications name ("ResNet50V2"; `parity.io.keras_apps.CONSTRUCTOR` maps presets).
            num_classes: its classes; 0 builds it with include_top=False.
            in_channels: its input channels.
            path: a `.weights.h5` the model saved (`save_weights`), or None.
            pooling: without a head, "avg", "max" or None (the last map).
        """
        make = getattr(keras.applications, constructor)
        head: dict[str, Any]
        if num_classes:
            head = {"classes": num_classes, "classifier_activation": None}
        else:
            head = {"include_top": False, "pooling": pooling}
        # With its head on, keras.applications wants a static input size; any >= 32 builds the same weights.
        model = make(weights=None, input_shape=(224, 224, in_channels), **head)
        if path is not None:
            model.load_weights(str(path))
        return model

    def write_native(self, fmt: str, weights: Mapping[str, np.ndarray], tmp: Path, spec: ResNetSpec) -> None:
        """`save_weights` (.weights.h5) or `save` (.keras: the spec travels in the model's config)."""
        model = self.build(spec)
        self.assign(model, weights)
        if fmt == "keras-weights":
            model.save_weights(str(tmp))
        else:
            model.save(str(tmp))
