"""keras.applications ResNets (v1 and V2, with or without their head) <-> canonical weights, by a naming rule.

keras.applications builds the paper's v1 ResNet (`ResNet50/101/152`: stride on the first 1x1, biased convs,
BN epsilon 1.001e-5; the spec's `keras_applications` variant) and the pre-activation V2 (`ResNet50V2/101V2/
152V2`: the presets `resnet50v2` ...). Its layer names map to canonical ones by rule:

| keras.applications | canonical (v1) | canonical (V2) |
|---|---|---|
| `conv1_conv`, `conv1_bn` | `conv1`, `bn1` | `conv1` (no stem BN) |
| `conv{s}_block{b}_preact_bn` | | `layer{s-1}.{b-1}.bn1` |
| `conv{s}_block{b}_{i}_conv`, i = 1..3 | `layer{s-1}.{b-1}.conv{i}` | same |
| `conv{s}_block{b}_{i}_bn` | `.bn{i}` | `.bn{i+1}` (the BN before the next conv) |
| `conv{s}_block{b}_0_conv` / `_bn` (shortcut) | `.downsample.0` / `.1` | `.downsample.0` |
| `post_bn` | | `post_bn` |
| `predictions` | `fc` | `fc` |

Files are read without Keras where they name their layers: a `.keras` archive (its `config.json` lists the
layers in order, its `model.weights.h5` holds them in that order) and a legacy full-model `.h5`. A
`.weights.h5` holds the variables under generic names (`conv2d_7`) only; the family, depth, classes and input
channels are read off its shapes, and the Keras adapter rebuilds that keras.applications model to load it.
The head ends in a softmax unless built with `classifier_activation=None`; our models give logits.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter_named
from parity.core.errors import CheckpointError, one_line
from parity.core.layout import KERAS_TO_TORCH_SUFFIX, KERAS_VARIABLES, keras_layout, torch_layout, torch_shape
from parity.io.libraries import Library, Read
from parity.io.weights import WeightMismatchError, match_shapes
from parity.spec import ResNetSpec, make_spec

FIXED = {"conv1_conv": "conv1", "conv1_bn": "bn1", "post_bn": "post_bn", "predictions": "fc"}
BLOCK_LAYER = re.compile(r"^conv(\d+)_block(\d+)_(\d|preact)_(conv|bn)$")
ARCH_OF_DEPTH = {50: "resnet50", 101: "resnet101", 152: "resnet152"}
V2_OF_DEPTH = {50: "resnet50v2", 101: "resnet101v2", 152: "resnet152v2"}
CONSTRUCTOR = {
    "resnet50": "ResNet50",
    "resnet101": "ResNet101",
    "resnet152": "ResNet152",
    "resnet50v2": "ResNet50V2",
    "resnet101v2": "ResNet101V2",
    "resnet152v2": "ResNet152V2",
}
"""Preset name -> the keras.applications constructor that builds it."""


POOLING_LAYERS = {"avg_pool": "avg", "max_pool": "max"}


def canonical_layer_name(name: str, preact: bool = False) -> str:
    """`conv3_block2_0_bn` -> `layer2.1.downsample.1`; KeyError for a layer without weights here."""
    if name in FIXED:
        return FIXED[name]
    match = BLOCK_LAYER.match(name)
    if match is None:
        raise KeyError(f"keras.applications layer {name!r} has no canonical name")
    stage, block, index, kind = int(match[1]), int(match[2]), match[3], match[4]
    prefix = f"layer{stage - 1}.{block - 1}."
    if index == "preact":
        return prefix + "bn1"
    if index == "0":
        return prefix + ("downsample.0" if kind == "conv" else "downsample.1")
    if preact and kind == "bn":
        return prefix + f"bn{int(index) + 1}"
    return prefix + f"{kind}{index}"


# -- models in memory (a keras.applications Functional) ------------------------------------------------


def _is_preact(names: list[str]) -> bool:
    return "post_bn" in names


def _variables(model: Any) -> dict[str, Any]:
    preact = _is_preact([layer.name for layer in model.layers])
    variables = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = canonical_layer_name(layer.name, preact)
        for variable in layer.weights:
            variables[f"{prefix}.{KERAS_TO_TORCH_SUFFIX[variable.name]}"] = variable
    return variables


def from_keras_applications(model: Any) -> dict[str, np.ndarray]:
    """Canonical weights (PyTorch layout) of a keras.applications ResNet (v1 or V2, any head)."""
    return {key: torch_layout(np.array(var.numpy())) for key, var in _variables(model).items()}


def to_keras_applications(model: Any, weights: Mapping[str, Any]) -> None:
    """Load canonical weights into a keras.applications ResNet; validates all before assigning."""
    variables = _variables(model)
    expected = {k: torch_shape(tuple(v.shape)) for k, v in variables.items()}
    arrays = match_shapes(expected, weights)
    for key, variable in variables.items():
        variable.assign(keras_layout(arrays[key]).astype(variable.dtype))


def spec_for(model: Any, **overrides: Any) -> ResNetSpec:
    """The spec of a keras.applications ResNet model: family, depth, classes, channels and head."""
    layers = {layer.name: [tuple(v.shape) for v in layer.weights] for layer in model.layers}
    pooling = next((POOLING_LAYERS[n] for n in layers if n in POOLING_LAYERS), None)
    return _spec_from_layers(model.name, layers, pooling, **overrides)


def _spec_from_layers(
    source: str, layers: Mapping[str, list[tuple[int, ...]]], pooling: str | None, **overrides: Any
) -> ResNetSpec:
    """The spec from {layer name: Keras variable shapes} and the head's pooling."""
    names = list(layers)
    preact = _is_preact(names)
    depth = 2 + 3 * sum(1 for name in names if name.endswith("_3_conv"))
    presets = V2_OF_DEPTH if preact else ARCH_OF_DEPTH
    if depth not in presets or "conv1_conv" not in layers:
        raise ValueError(f"{source}: not a keras.applications ResNet50/101/152 (V2) (found depth {depth})")
    in_channels = int(layers["conv1_conv"][0][2])
    if "predictions" in layers:
        fields: dict[str, Any] = {"num_classes": int(layers["predictions"][0][1])}
    else:  # include_top=False: the pooled features, or the last map
        fields = {"num_classes": 0, "pooling": pooling}
    variant = "torchvision" if preact else "keras_applications"
    return make_spec(presets[depth], variant, in_channels=in_channels, **{**fields, **overrides})


# -- files, read without Keras -----------------------------------------------------------------------------


def is_keras_applications(path: str | Path) -> bool:
    """Whether a `.keras`, `.h5` or `.weights.h5` file holds a Functional model (keras.applications' kind)
    rather than a resnet_keras.ResNet; read from the file's listing, nothing is loaded."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json")).get("class_name") == "Functional"
        import h5py

        with h5py.File(path, "r") as f:
            if "model_weights" in f:
                return "layer_names" in f["model_weights"].attrs
            return "layers" in f and "conv2d" in f["layers"]
    except (OSError, KeyError, ValueError):
        return False


LAYER_CLASSES = (
    "InputLayer",
    "ZeroPadding2D",
    "Conv2D",
    "BatchNormalization",
    "Activation",
    "MaxPooling2D",
    "Add",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Dense",
)
"""Every layer class keras.applications' ResNets (v1 and V2, any head) are made of: a file holding any other layer
(a Lambda, a Rescaling, a nested model) is refused naming it, never read as if the layer were not there."""


def _architecture(path: Path, configs: list[dict[str, Any]]) -> dict[str, Any]:
    """The head's pooling, the classifier's activation and the input shape a model's layer configs record;
    a layer no keras.applications ResNet has, or an activation other than its ReLU, refused naming the layer."""
    found: dict[str, Any] = {"pooling": None}
    for layer in configs:
        kind, config = layer.get("class_name"), layer.get("config") or {}
        name = config.get("name")
        if kind not in LAYER_CLASSES:
            raise CheckpointError(
                f"{path}: layer {name!r} is a {kind}, which no keras.applications ResNet has; the file is refused "
                "rather than read without it (it changes what the network computes)"
            )
        activation = config.get("activation", "linear")
        if (kind == "Activation" and activation != "relu") or (kind == "Conv2D" and activation != "linear"):
            raise CheckpointError(
                f"{path}: layer {name!r} applies {activation!r}, where keras.applications' ResNets use relu"
            )
        if kind == "InputLayer":
            shape = config.get("batch_shape") or config.get("batch_input_shape") or [None, None, None, None]
            found["input_shape"] = list(shape[1:])
        if name in POOLING_LAYERS:
            found["pooling"] = POOLING_LAYERS[name]
        if name == "predictions":
            found["classifier_activation"] = activation
    return found


def read_file(
    path: str | Path, keras_model_loader: Any = None
) -> tuple[ResNetSpec, dict[str, np.ndarray], dict[str, Any]]:
    """(spec, canonical weights, recorded) of a keras.applications ResNet saved as `.keras`, legacy `.h5` or
    `.weights.h5`; recorded: its classifier's activation and input shape, where the file says (`_architecture`).

    Args:
        path: the file.
        keras_model_loader: `(constructor, num_classes, in_channels, path) -> model` that rebuilds a
            keras.applications model and loads a `.weights.h5` into it (the Keras adapter's).
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        layers, configs = _read_keras_archive(path)
    else:
        import h5py

        with h5py.File(path, "r") as f:
            if "model_weights" in f:
                layers, configs = _read_legacy_h5(f)
            else:
                spec, weights = _read_weights_h5(path, f, keras_model_loader)
                return spec, weights, {}
    found = _architecture(path, configs)
    try:
        spec = _spec_from_layers(str(path), {k: [a.shape for a in v] for k, v in layers.items()}, found.pop("pooling"))
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    return spec, _canonical(path, layers, spec.preact), found


def _canonical(path: Path, layers: Mapping[str, list[np.ndarray]], preact: bool) -> dict[str, np.ndarray]:
    weights = {}
    for name, arrays in layers.items():
        if not arrays:
            continue
        try:
            prefix = canonical_layer_name(name, preact)
        except KeyError as exc:
            raise CheckpointError(f"{path}: {exc.args[0]}") from None
        roles = KERAS_VARIABLES["BatchNormalization"] if len(arrays) == 4 else KERAS_VARIABLES["Conv2D"]
        for role, value in zip(roles, arrays):
            weights[f"{prefix}.{KERAS_TO_TORCH_SUFFIX[role]}"] = torch_layout(np.asarray(value, np.float32))
    return weights


def _read_keras_archive(path: Path) -> tuple[dict[str, list[np.ndarray]], list[dict[str, Any]]]:
    """A `.keras` archive: layer names and classes from config.json, arrays from model.weights.h5 in that order.

    Keras stores a Functional's layers as `layers/<class in snake_case>[_k]` (the k-th of its class)."""
    import io

    import h5py

    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        blob = archive.read("model.weights.h5")
    entries = [(layer["class_name"], layer["config"]["name"]) for layer in config["config"]["layers"]]
    seen: dict[str, int] = {}
    layers: dict[str, list[np.ndarray]] = {}
    with h5py.File(io.BytesIO(blob), "r") as f:
        for class_name, name in entries:
            snake = _snake_case(class_name)
            k = seen.get(snake, 0)
            seen[snake] = k + 1
            if class_name not in KERAS_VARIABLES:
                continue
            group = f"layers/{snake}" + (f"_{k}" if k else "") + "/vars"
            if group not in f:
                raise CheckpointError(f"{path}: model.weights.h5 has no {group} for layer {name!r}")
            layers[name] = [f[group][str(i)][()] for i in range(len(f[group]))]
    return layers, list(config["config"]["layers"])


def _snake_case(name: str) -> str:
    """Keras' `naming.to_snake_case`: the name its weights file gives a layer of this class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def _read_legacy_h5(f: Any) -> tuple[dict[str, list[np.ndarray]], list[dict[str, Any]]]:
    """A legacy full-model `.h5` (`model.save("x.h5")`): every layer named, its weights named inside, and
    the model's config (each layer's class and settings) in an attribute."""
    group = f["model_weights"]
    layers = {}
    for raw in group.attrs["layer_names"]:
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        names = [w.decode() if isinstance(w, bytes) else str(w) for w in group[name].attrs.get("weight_names", [])]
        layers[name] = [group[name][w][()] for w in names]
    config = f.attrs.get("model_config")
    config = json.loads(config.decode() if isinstance(config, bytes) else config) if config is not None else {}
    return layers, list(config.get("config", {}).get("layers", []))


def _read_weights_h5(path: Path, f: Any, loader: Any) -> tuple[ResNetSpec, dict[str, np.ndarray]]:
    """A Functional's `.weights.h5`: family and sizes from its shapes, then the model rebuilt to load it."""
    groups = {
        name: [f[f"layers/{name}/vars/{i}"].shape for i in range(len(f[f"layers/{name}/vars"]))] for name in f["layers"]
    }
    convs = [shapes for name, shapes in groups.items() if name.startswith("conv2d") and shapes]
    norms = [name for name, shapes in groups.items() if name.startswith("batch_normalization") and shapes]
    dense = [shapes for name, shapes in groups.items() if name.startswith("dense") and shapes]
    blocks = (len(convs) - 1 - 4) // 3  # stem conv, 4 projections, 3 convs per block
    preact = len(norms) == 3 * blocks + 1  # V2: preact, 1_bn, 2_bn per block and post_bn; v1: 3 per block, 4 + stem
    depth = 2 + 3 * blocks
    presets = V2_OF_DEPTH if preact else ARCH_OF_DEPTH
    if depth not in presets:
        raise CheckpointError(f"{path}: a .weights.h5 of a Functional model that is not a keras.applications ResNet")
    stem = next(shapes for name, shapes in groups.items() if name == "conv2d")
    in_channels = int(stem[0][2])
    num_classes = int(dense[0][0][1]) if dense else 0
    if loader is None:
        raise CheckpointError(f"{path}: a keras.applications .weights.h5 needs Keras to rebuild the model")
    model = loader(CONSTRUCTOR[presets[depth]], num_classes, in_channels, path)
    return spec_for(model), from_keras_applications(model)


# -- the library: reading, the round trip, writing ----------------------------------------------------------

WRITE_FORMATS = (".keras", ".weights.h5", ".h5")
PRESET_OF = {constructor: preset for preset, constructor in CONSTRUCTOR.items()}


class KerasApplications(Library):
    """keras.applications ResNet50/101/152 and their V2, as `.keras`, legacy `.h5` or `.weights.h5` files."""

    NAME = "keras-applications"
    WRITES = "a .keras, .weights.h5 or legacy .h5 file keras.applications loads"
    FOLDER = False

    def detect(self, path: Path) -> bool:
        return path.is_file() and path.name.lower().endswith(WRITE_FORMATS) and is_keras_applications(path)

    def read(self, path: Path) -> Read:
        try:
            return read_file(path, adapter_named("keras").keras_applications_model)
        except (CheckpointError, WeightMismatchError):
            raise
        except Exception as exc:  # h5py and Keras have their own exception types for a bad file
            raise CheckpointError(f"cannot read {path} as a keras.applications model: {one_line(exc)}") from exc

    def describe(self, spec: ResNetSpec) -> dict[str, Any]:
        if spec.preset not in CONSTRUCTOR:
            raise ValueError(f"keras.applications builds {', '.join(CONSTRUCTOR)}, not {spec.name}")
        pooling = spec.pooling if not spec.num_classes else "avg"
        return {
            "constructor": CONSTRUCTOR[spec.preset],
            "classes": spec.num_classes,
            "channels": spec.in_channels,
            "pooling": pooling,
        }

    def spec_of(self, description: dict[str, Any]) -> ResNetSpec:
        preset = PRESET_OF[description["constructor"]]
        variant = "torchvision" if preset.endswith("v2") else "keras_applications"
        sizes = {"num_classes": description["classes"], "in_channels": description["channels"]}
        return make_spec(preset, variant, pooling=description["pooling"], **sizes)

    def title(self, description: Any) -> str:
        return f"keras.applications' {description['constructor']}"

    def write_checked(
        self, spec: ResNetSpec, weights: Mapping[str, Any], dst: Path, recorded: Mapping[str, Any], force: bool
    ) -> Path:
        """A keras.applications model file (`.keras`, `.weights.h5` or legacy `.h5`), written atomically."""
        from parity.core.files import atomic_write

        name = dst.name.lower()
        if not name.endswith(WRITE_FORMATS):
            raise ValueError(f"{dst}: keras.applications files are {', '.join(WRITE_FORMATS)}")
        build = adapter_named("keras").keras_applications_model
        head = {k: recorded[k] for k in ("classifier_activation", "input_shape") if recorded.get(k) is not None}
        model = build(CONSTRUCTOR[str(spec.preset)], spec.num_classes, spec.in_channels, None, spec.pooling, **head)
        to_keras_applications(model, weights)
        if name.endswith(".weights.h5"):
            return atomic_write(dst, lambda tmp: model.save_weights(str(tmp)), force)
        return atomic_write(dst, lambda tmp: model.save(str(tmp)), force)
