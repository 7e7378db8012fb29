"""keras.applications ResNet50/101/152 weights <-> canonical weights, by a naming rule.

keras.applications builds the paper's v1 ResNet (stride on the first 1x1, biased convs, BN epsilon
1.001e-5): the spec's `keras_applications` variant. Its layer names map to torchvision's by rule:

| keras.applications | canonical |
|---|---|
| `conv1_conv`, `conv1_bn` | `conv1`, `bn1` |
| `conv{s}_block{b}_{i}_conv` / `_bn`, i = 1..3 | `layer{s-1}.{b-1}.conv{i}` / `.bn{i}` |
| `conv{s}_block{b}_0_conv` / `_bn` (shortcut) | `layer{s-1}.{b-1}.downsample.0` / `.1` |
| `predictions` | `fc` |

Its head ends in a softmax unless built with `classifier_activation=None`; our models give logits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from parity.core.layout import KERAS_TO_TORCH_SUFFIX, keras_layout, torch_layout, torch_shape
from parity.io.weights import match_shapes

FIXED = {"conv1_conv": "conv1", "conv1_bn": "bn1", "predictions": "fc"}
BLOCK_LAYER = re.compile(r"^conv(\d+)_block(\d+)_(\d)_(conv|bn)$")
ARCH_OF_DEPTH = {50: "resnet50", 101: "resnet101", 152: "resnet152"}


def canonical_layer_name(name: str) -> str:
    """`conv3_block2_0_bn` -> `layer2.1.downsample.1`; KeyError for a layer without weights here."""
    if name in FIXED:
        return FIXED[name]
    match = BLOCK_LAYER.match(name)
    if match is None:
        raise KeyError(f"keras.applications layer {name!r} has no canonical name")
    stage, block, index, kind = int(match[1]), int(match[2]), int(match[3]), match[4]
    prefix = f"layer{stage - 1}.{block - 1}."
    if index == 0:
        return prefix + ("downsample.0" if kind == "conv" else "downsample.1")
    return prefix + f"{kind}{index}"


def _variables(model: Any) -> dict[str, Any]:
    variables = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = canonical_layer_name(layer.name)
        for variable in layer.weights:
            variables[f"{prefix}.{KERAS_TO_TORCH_SUFFIX[variable.name]}"] = variable
    return variables


def from_keras_applications(model: Any) -> dict[str, np.ndarray]:
    """Canonical weights (PyTorch layout) of a keras.applications ResNet50/101/152 model."""
    return {key: torch_layout(np.array(var.numpy())) for key, var in _variables(model).items()}


def to_keras_applications(model: Any, weights: Mapping[str, Any]) -> None:
    """Load canonical weights into a keras.applications ResNet; validates all before assigning."""
    variables = _variables(model)
    expected = {k: torch_shape(tuple(v.shape)) for k, v in variables.items()}
    arrays = match_shapes(expected, weights)
    for key, variable in variables.items():
        variable.assign(keras_layout(arrays[key]).astype(variable.dtype))


def spec_for(model: Any, **overrides: Any):
    """The `keras_applications` spec matching a keras.applications ResNet (depth, classes, channels)."""
    from parity.spec import make_spec

    depth = 2 + 3 * sum(1 for layer in model.layers if layer.name.endswith("_3_conv"))
    if depth not in ARCH_OF_DEPTH:
        raise ValueError(f"{model.name}: not a keras.applications ResNet50/101/152 (found depth {depth})")
    fc = model.get_layer("predictions").kernel
    conv1 = model.get_layer("conv1_conv").kernel
    return make_spec(
        ARCH_OF_DEPTH[depth],
        "keras_applications",
        num_classes=int(fc.shape[1]),
        in_channels=int(conv1.shape[2]),
        **overrides,
    )
