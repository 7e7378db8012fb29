"""Weights of a ResNet whose names are not torchvision's, mapped onto a spec by structural order.

Tutorial code names its layers freely (`identity_downsample`, `block2.0.conv3`, `stem/conv2d`). Their
*order* and *shapes* still say which canonical layer each one is: `weights_by_structure` groups the
source's tensors into layers (a conv, a BatchNorm, the fc) in the order the source holds them
(a state_dict's order, a Keras model's variable order), lines them up with the spec's layers, and
checks every shape. Two orders are tried inside each block: the shortcut after the main path
(torchvision's) and before it. Exactly one must fit; none, or two that disagree, is refused with a
message naming the first layer that does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parity.core.layout import KERAS_TO_TORCH_SUFFIX, torch_layout
from parity.spec import NORM_SUFFIXES, NUM_BATCHES_TRACKED, ResNetSpec

BN_ROLES = NORM_SUFFIXES  # the spec's order of a BatchNorm's tensors


@dataclass
class Layer:
    """One layer with weights: its name, kind ('conv', 'bn', 'fc') and tensors by role (PyTorch layout)."""

    name: str
    kind: str
    tensors: dict[str, np.ndarray] = field(default_factory=dict)

    def signature(self) -> tuple:
        return (self.kind, tuple(sorted((role, tuple(np.shape(v))) for role, v in self.tensors.items())))

    def describe(self) -> str:
        shapes = ", ".join(f"{role} {tuple(np.shape(v))}" for role, v in self.tensors.items())
        return f"{self.name!r} ({self.kind}: {shapes})"


def _kind(tensors: Mapping[str, np.ndarray], name: str) -> str:
    if "running_mean" in tensors:
        return "bn"
    weight = tensors.get("weight")
    if weight is None:
        raise ValueError(f"layer {name!r} has no weight tensor (roles: {', '.join(tensors)})")
    return {4: "conv", 3: "conv", 2: "fc"}.get(np.ndim(weight)) or _bad_rank(name, weight)  # 3: a 1-D conv (ECA)


def _bad_rank(name: str, weight: Any) -> str:
    raise ValueError(
        f"layer {name!r}: a weight of rank {np.ndim(weight)} is neither a conv (4, 3) nor a dense (2) layer"
    )


def layers_of_state_dict(state: Mapping[str, Any]) -> list[Layer]:
    """Layers of a torch-style state dict ('prefix.weight', 'prefix.running_mean', ...) in its order."""
    grouped: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        if key.endswith(NUM_BATCHES_TRACKED):
            continue
        prefix, _, role = key.rpartition(".")
        if role not in BN_ROLES:
            raise ValueError(f"{key!r}: not a weight, bias or BatchNorm statistic")
        array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        grouped.setdefault(prefix, {})[role] = array
    return [Layer(prefix, _kind(tensors, prefix), tensors) for prefix, tensors in grouped.items()]


def layers_of_keras(model: Any) -> list[Layer]:
    """Layers of any Keras model, in its variable order, converted to PyTorch layout and roles."""
    grouped: dict[str, dict[str, np.ndarray]] = {}
    for variable in model.weights:
        prefix, _, role = variable.path.rpartition("/")
        if role not in KERAS_TO_TORCH_SUFFIX:
            raise ValueError(f"Keras variable {variable.path!r} is not a kernel, bias, gamma, beta or moving statistic")
        grouped.setdefault(prefix, {})[KERAS_TO_TORCH_SUFFIX[role]] = torch_layout(np.array(variable.numpy()))
    return [Layer(prefix, _kind(tensors, prefix), tensors) for prefix, tensors in grouped.items()]


def source_layers(source: Any) -> list[Layer]:
    """Layers of a state dict, a torch module or a Keras model."""
    import sys

    keras = sys.modules.get("keras")
    if keras is not None and isinstance(source, keras.Model):
        return layers_of_keras(source)
    if hasattr(source, "state_dict") and callable(source.state_dict):
        return layers_of_state_dict(source.state_dict())
    if isinstance(source, Mapping):
        return layers_of_state_dict(source)
    raise TypeError(f"expected a state dict, a torch module or a Keras model, got {type(source).__name__}")


def spec_layers(spec: ResNetSpec, shortcut_first: bool = False) -> list[Layer]:
    """The spec's layers with weights, in order, as empty-shaped Layers (canonical names)."""
    shapes = spec.canonical_shapes()
    order: list[str] = [layer.name for layer in spec.stem_plan().layers()]
    for plan in spec.block_plans():
        names = [f"{plan.name}.{layer.name}" for layer in plan.layers()]
        shortcut = [f"{plan.name}.{layer.name}" for layer in plan.downsample or () if layer is not None]
        main = names[: len(names) - len(shortcut)]
        order += shortcut + main if shortcut_first else main + shortcut
    head = spec.head_plan()
    order += ([head.norm.name] if head.norm is not None else []) + ([head.name] if head.out_features else [])
    layers = []
    for name in order:
        tensors = {
            role: np.empty(shapes[f"{name}.{role}"], np.float32) for role in BN_ROLES if f"{name}.{role}" in shapes
        }
        layers.append(Layer(name, _kind(tensors, name), tensors))
    return layers


def _fitting_prefix(source: list[Layer], target: list[Layer]) -> int:
    """How many layers fit from the start."""
    for index, (src, dst) in enumerate(zip(source, target)):
        if src.signature() != dst.signature():
            return index
    return min(len(source), len(target))


def _first_misfit(source: list[Layer], spec: ResNetSpec) -> str:
    """The first layer that fits no order, in the order that fits furthest."""
    target = max((spec_layers(spec, first) for first in (False, True)), key=lambda t: _fitting_prefix(source, t))
    index = _fitting_prefix(source, target)
    if index < min(len(source), len(target)):
        return f"layer #{index + 1}: source {source[index].describe()} cannot be {target[index].describe()}"
    return f"the source has {len(source)} layers with weights, the spec {len(target)}"


def weights_by_structure(source: Any, spec: ResNetSpec) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(canonical weights, {source layer name: canonical layer name}) of a differently named ResNet.

    Args:
        source: a torch-style state dict, a torch module or a Keras model of the network.
        spec: the spec it is (e.g. `make_spec("resnet18", "same_bias_conv_shortcut")`).

    Raises ValueError naming the first layer that fits no order, or the two orders that both fit.
    """
    layers = source_layers(source)
    fits = {}
    for shortcut_first in (False, True):
        target = spec_layers(spec, shortcut_first)
        if len(layers) == len(target) and all(s.signature() == t.signature() for s, t in zip(layers, target)):
            fits[shortcut_first] = {s.name: t.name for s, t in zip(layers, target)}
    if not fits:
        raise ValueError(
            f"the network does not fit {spec.name} ({spec.variant}) in structural order: " + _first_misfit(layers, spec)
        )
    mappings = list(fits.values())
    if len(mappings) == 2 and mappings[0] != mappings[1]:
        differ = next(k for k in mappings[0] if mappings[0][k] != mappings[1][k])
        raise ValueError(
            f"ambiguous structural order: {differ!r} could be {mappings[0][differ]!r} (shortcut "
            f"after the main path) or {mappings[1][differ]!r} (shortcut first); rename the layers "
            "to canonical names or map them yourself"
        )
    mapping = mappings[0]
    weights = {}
    for layer in layers:
        for role, value in layer.tensors.items():
            weights[f"{mapping[layer.name]}.{role}"] = np.ascontiguousarray(value, dtype=np.float32)
    return weights, mapping
