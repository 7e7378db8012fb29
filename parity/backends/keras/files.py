"""`.weights.h5` and `.keras` files, and keras.applications models (mirrors `parity.backends.torch.files`)."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

import resnet_keras
from parity.backends.interface import Adapter
from parity.core.errors import CheckpointError, one_line
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
        _refuse_other_models(path)
        try:
            model = keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises TypeError, ValueError, KeyError for what it cannot rebuild
            raise CheckpointError(f"{path}: Keras cannot rebuild the model in it ({one_line(exc)})") from None
        if not isinstance(model, resnet_keras.ResNet):
            raise CheckpointError(f"{path} holds a {type(model).__name__}, not a resnet_keras.ResNet")
        return model.spec, self.get_weights(model)

    def keras_applications_model(
        self,
        constructor: str,
        num_classes: int,
        in_channels: int,
        path: Path | None = None,
        pooling: str | None = None,
        classifier_activation: str | None = None,
        input_shape: Sequence[int | None] | None = None,
    ) -> Any:
        """A keras.applications ResNet (a logits head unless told otherwise, or none with num_classes 0), with a
        `.weights.h5` loaded if given.

        Args:
            constructor: its keras.applications name ("ResNet50V2"; `keras_applications.CONSTRUCTOR` maps presets).
            num_classes: its classes; 0 builds it with include_top=False.
            in_channels: its input channels.
            path: a `.weights.h5` the model saved (`save_weights`), or None.
            pooling: without a head, "avg", "max" or None (the last map).
            classifier_activation: the head's activation ("softmax", as keras.applications builds it by default;
                None: logits, as our models give).
            input_shape: (H, W, C) the model takes (None: any size without a head, 224 x 224 with one).
        """
        make = getattr(keras.applications, constructor)
        head: dict[str, Any]
        if num_classes:
            head = {"classes": num_classes, "classifier_activation": classifier_activation}
        else:
            head = {"include_top": False, "pooling": pooling}
        shape = tuple(input_shape) if input_shape is not None else (None, None, in_channels)
        if num_classes and None in shape:  # with its head on, keras.applications wants a static input size
            shape = (224, 224, in_channels)
        model = make(weights=None, input_shape=shape, **head)
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


def _refuse_other_models(path: Path) -> None:
    """A `.keras` file is rebuilt only when its config.json says it is a resnet_keras.ResNet: anything else (a
    Sequential with a Lambda, a user's own model) is refused from the listing, before Keras deserialises a thing."""
    import json

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path} is not a .keras archive ({one_line(exc)})") from None
    if config.get("registered_name") == RESNET or not isinstance(config, dict):
        return
    layers = (config.get("config") or {}).get("layers") or []
    kinds = sorted({layer.get("class_name", "?") for layer in layers if isinstance(layer, dict)})
    inside = f" of {', '.join(kinds)}" if kinds else ""
    raise CheckpointError(
        f"{path} holds a Keras {config.get('class_name', 'model')}{inside}, neither a resnet_keras.ResNet nor a "
        "keras.applications ResNet; nothing in it was loaded or run"
    )


RESNET = "resnet_keras>ResNet"
"""The registered name a resnet_keras.ResNet's `.keras` config carries."""
