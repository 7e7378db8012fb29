"""Any `keras.Model` read as it is (mirrors `parity.backends.torch.live`): its layers with their
hyperparameters and tensors, and its output, for `parity.io.live` and `parity.checks.live`.

Nothing here changes the user's model: its layers are read, and it is called with `training=False`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from parity.backends.interface import Adapter, LiveLayer
from parity.backends.keras.run import floatx
from parity.core.errors import Unavailable
from parity.core.layout import KERAS_TO_TORCH_SUFFIX, nchw, nhwc, torch_layout

PASSIVE = ("InputLayer", "Flatten", "Dropout", "Reshape")
"""Layer classes that compute nothing at inference."""


def _pair(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _activation(layer: Any) -> str:
    fn = getattr(layer, "activation", None)
    return "linear" if fn is None else str(keras.activations.serialize(fn)).lower()


def _own_variables(layer: Any) -> list[Any]:
    return [*layer._trainable_variables, *layer._non_trainable_variables]


def _name(layer: Any) -> str:
    """The layer's path in the model where its variables say it (subclassed models), else its name."""
    variables = _own_variables(layer)
    return variables[0].path.rpartition("/")[0] if variables else layer.name


def _layer(layer: Any) -> LiveLayer:
    cls = type(layer).__name__
    tensors = {}
    for variable in _own_variables(layer):
        role = variable.path.rpartition("/")[2]
        tensors[KERAS_TO_TORCH_SUFFIX.get(role, role)] = torch_layout(np.array(variable.numpy(), dtype=np.float32))
    name = _name(layer)
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv1D)) and cls in ("Conv2D", "Conv1D"):
        attrs = {
            "kernel": tuple(layer.kernel_size),
            "stride": tuple(layer.strides),
            "padding": layer.padding,
            "dilation": tuple(layer.dilation_rate),
            "groups": layer.groups,
            "bias": layer.use_bias,
            "activation": _activation(layer),
        }
        return LiveLayer(name, "conv", cls, attrs, tensors)
    if cls == "BatchNormalization":
        # FRAMEWORK: BatchNorm momentum — Keras weighs the old statistic by momentum, torch the new batch's
        attrs = {"eps": layer.epsilon, "momentum": round(1 - layer.momentum, 12), "affine": layer.center}
        return LiveLayer(name, "bn", cls, attrs, tensors)
    if cls == "Dense":
        return LiveLayer(name, "fc", cls, {"bias": layer.use_bias, "activation": _activation(layer)}, tensors)
    if cls in ("MaxPooling2D", "AveragePooling2D"):
        attrs = {"kernel": _pair(layer.pool_size), "stride": _pair(layer.strides), "padding": layer.padding}
        return LiveLayer(name, "maxpool" if cls == "MaxPooling2D" else "avgpool", cls, attrs, tensors)
    if cls in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return LiveLayer(name, "globalpool", cls, {}, tensors)
    if cls == "ZeroPadding2D":
        return LiveLayer(name, "pad", cls, {"padding": tuple(map(tuple, layer.padding))}, tensors)
    if cls == "ReLU":
        plain = layer.max_value is None and not layer.negative_slope and not layer.threshold
        return LiveLayer(name, "act", cls, {"fn": "relu" if plain else "relu (clipped or leaky)"}, tensors)
    if cls == "Activation":
        return LiveLayer(name, "act", cls, {"fn": _activation(layer)}, tensors)
    if cls == "Add":
        return LiveLayer(name, "add", cls, {}, tensors)
    if cls in PASSIVE:
        return LiveLayer(name, "passive", cls, {}, tensors)
    return LiveLayer(name, "other", cls, {}, tensors)


def _graph_order(model: Any) -> list[Any]:
    """A Functional model's layers in the order a forward pass can run them, one branch to its end before the next
    (the first-created branch first): Keras lists them by depth from the output, which interleaves a block's
    shortcut with its main path."""
    ops = list(model.operations)
    index = {id(op): i for i, op in enumerate(ops)}
    parents = {
        id(op): {id(n.operation) for node in op._inbound_nodes for n in node.parent_nodes if id(n.operation) in index}
        for op in ops
    }
    done: set[int] = set()
    order = []
    stack = [op for op in reversed(ops) if not parents[id(op)]]
    while stack:
        op = stack.pop()
        if id(op) in done:
            continue
        done.add(id(op))
        order.append(op)
        ready = [c for c in ops if id(c) not in done and id(op) in parents[id(c)] and parents[id(c)] <= done]
        stack.extend(sorted(ready, key=lambda c: -index[id(c)]))  # the first-created is taken first
    return order + [op for op in ops if id(op) not in done]


def _children(layer: Any) -> list[Any]:
    if hasattr(layer, "operations") and hasattr(layer, "_inbound_nodes") and getattr(layer, "inputs", None):
        return [op for op in _graph_order(layer) if op is not layer]
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _depth_first(model: Any) -> Iterator[tuple[Any, list[Any]]]:
    """(layer, its sublayers) depth first, each in its parent's order (Keras' own flattening is breadth first)."""
    for layer in _children(model):
        inner = _children(layer)
        yield layer, inner
        yield from _depth_first(layer)


def _float64_clone(model: Any) -> Any:
    """A float64 copy of a Functional or Sequential model (`clone_model` rebuilds it from its graph under a float64
    policy, then the weights are copied); a subclassed model has no graph to rebuild: Unavailable."""
    if not (isinstance(model, keras.Sequential) or type(model).__name__ == "Functional"):
        raise Unavailable(
            f"a subclassed {type(model).__name__} cannot be rebuilt in float64; its float32 output is read"
        )

    def in_float64(layer: Any) -> Any:  # each layer's config names its dtype policy: the global one is not enough
        return type(layer).from_config({**layer.get_config(), "dtype": "float64"})

    with floatx("float64"):
        clone = keras.models.clone_model(model, clone_function=in_float64)
    clone.set_weights([np.asarray(w, np.float64) for w in model.get_weights()])
    return clone


class KerasLive(Adapter):
    """Read and run any Keras model."""

    def owns(self, model: Any) -> bool:
        """True for any `keras.Model`."""
        return isinstance(model, keras.Model)

    def live_layers(self, model: Any) -> list[LiveLayer]:
        """Every layer without sublayers, and every layer holding its own variables, in the model's order."""
        found = []
        for layer, inner in _depth_first(model):
            if _own_variables(layer) or not inner:
                found.append(_layer(layer))
        return found

    def run_live(self, model: Any, x: np.ndarray, dtype: str = "float32") -> np.ndarray:
        """The model's output for NCHW `x`, called with `training=False` (logits, or an NCHW map)."""
        if dtype != "float32":
            model = _float64_clone(model)
        out = keras.ops.convert_to_numpy(model(nhwc(np.asarray(x, dtype)), training=False))
        return nchw(out) if out.ndim == 4 else out

    def load_live(self, model: Any, path: Path, weights: Mapping[str, np.ndarray] | None) -> None:
        """`model.load_weights` of a `.weights.h5` or `.keras` file saved from the same model code."""
        if weights is not None or not str(path).lower().endswith((".weights.h5", ".keras")):
            raise ValueError(f"{path}: a Keras model loads Keras' own files (.weights.h5, .keras)")
        model.load_weights(str(path))
