"""keras-hub `ResNetBackbone` presets (`save_to_preset` / `from_preset`) <-> canonical weights, without keras-hub.

A preset is a folder: `config.json` (the backbone's constructor arguments), `metadata.json`, `model.weights.h5`.
The weights file names a Functional's layers only by class and position (`conv2d_7`, `batch_normalization_3`);
their order is Keras' for a Functional graph: by depth from the output, ties in creation order. In a block that
means the main path's layers in order with the shortcut conv just before the last main conv and its BN just
before the last main BN. `layer_names(config)` writes that order down; tests check it against keras-hub itself
(fixtures made by keras-hub 0.32.0, with the script that made them).

| keras-hub | canonical |
|---|---|
| `conv1_conv`, `conv1_bn` (one stem conv) | `conv1`, `bn1` |
| `conv{i}_conv`, `conv{i}_bn`, i = 1..3 (the `_vd` deep stem) | `conv1.0`, `conv1.1`, `conv1.3`, `conv1.4`, `conv1.6`, `bn1` |
| `stack{s}_block{b}_pre_activation_bn` (V2) | `layer{s+1}.{b}.bn1` |
| `stack{s}_block{b}_{i}_conv` / `_bn` | `.conv{i}` / `.bn{i}` (V2: `.bn{i+1}`) |
| `stack{s}_block{b}_0_conv` / `_0_bn` | `.downsample.0` / `.1` (`_vd`: `.downsample.1` / `.2`, the pool at `.0`) |
| `post_bn` (V2) | `post_bn` |
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from parity.core.errors import CheckpointError
from parity.core.layout import KERAS_TO_TORCH_SUFFIX, KERAS_VARIABLES, keras_layout, torch_layout
from parity.io.infer import named
from parity.io.libraries import Library, Read, peek_config
from parity.spec import ResNetSpec

BLOCK_TYPES = {
    "basic_block": ("basic", False),
    "bottleneck_block": ("bottleneck", False),
    "basic_block_vd": ("basic", True),
    "bottleneck_block_vd": ("bottleneck", True),
}
"""keras-hub block_type -> (block, avg_down)."""

CLASS_FOLDERS = {"conv": "conv2d", "bn": "batch_normalization"}
"""How Keras names a Functional's Conv2D / BatchNormalization in its weights file (the k-th: `conv2d_k`)."""

MODULE = "keras_hub.src.models.resnet.resnet_backbone"


def is_preset(folder: Path) -> bool:
    config = peek_config(folder)
    return config.get("class_name") == "ResNetBackbone" or MODULE in str(config.get("module", ""))


def spec_from_config(config: Mapping[str, Any], path: Any) -> ResNetSpec:
    """The spec of a ResNetBackbone config (the feature map: num_classes 0, no pooling)."""
    args = config.get("config", config)
    try:
        block, avg_down = BLOCK_TYPES[args["block_type"]]
        filters, kernels = list(args["input_conv_filters"]), list(args["input_conv_kernel_sizes"])
        if (filters, kernels) == ([64], [7]):
            stem = {"stem": "imagenet", "stem_width": 64}
        elif len(filters) == 3 and kernels == [3, 3, 3] and filters[0] == filters[1]:
            stem = {"stem": "deep", "deep_stem_width": filters[0], "stem_width": filters[2]}
        else:
            raise ValueError(f"input convs {filters} x {kernels}: the spec has a 7x7 stem or a 3x3 deep stem (w-w-2w)")
        preact = bool(args.get("use_pre_activation", False))
        shape = args.get("image_shape") or [None, None, 3]
        fields: dict[str, Any] = {
            "block": block,
            "layers": tuple(int(n) for n in args["stackwise_num_blocks"]),
            "widths": tuple(int(n) for n in args["stackwise_num_filters"]),
            "strides": tuple(int(n) for n in args["stackwise_num_strides"]),
            "avg_down": avg_down,
            "preact": preact,
            "shortcut_norm": not preact,
            # keras-hub's vd basic blocks project in every stage's first block, layer1.0 included
            "shortcut": "first" if args["block_type"] == "basic_block_vd" else "projection",
            "num_classes": 0,
            "pooling": None,
            "in_channels": int(shape[-1]),
            **stem,
        }
        if args.get("data_format", "channels_last") != "channels_last":
            raise ValueError("data_format channels_first")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a ResNetBackbone the spec can build ({exc})") from None
    return named(ResNetSpec(variant="keras_hub", **fields))


def config_for(spec: ResNetSpec) -> dict[str, Any]:
    """The config.json of a ResNetBackbone for a spec (what keras-hub builds from it may differ: `KerasHub.refusal`);
    ValueError where it has no field for the spec's."""
    if spec.widths[0] != 64:
        raise ValueError(
            f"keras-hub's ResNetBackbone wants 64 filters in its first stack, the network has {spec.widths[0]}"
        )
    return {
        "module": MODULE,
        "class_name": "ResNetBackbone",
        "config": {
            "name": "res_net_backbone",
            "trainable": True,
            "dtype": {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": "float32"},
                "registered_name": None,
            },
            **_args_for(spec),
        },
        "registered_name": "keras_hub>ResNetBackbone",
    }


def _args_for(spec: ResNetSpec) -> dict[str, Any]:
    if spec.stem == "deep":
        filters, kernels = [spec.deep_stem_width, spec.deep_stem_width, spec.stem_width], [3, 3, 3]
    else:
        filters, kernels = [spec.stem_width], [7 if spec.stem == "imagenet" else 3]
    block_type = f"{spec.block}_block" + ("_vd" if spec.avg_down else "")
    return {
        "input_conv_filters": filters,
        "input_conv_kernel_sizes": kernels,
        "stackwise_num_filters": list(spec.widths),
        "stackwise_num_blocks": list(spec.layers),
        "stackwise_num_strides": list(spec.strides),
        "block_type": block_type,
        "use_pre_activation": spec.preact,
        "image_shape": [None, None, spec.in_channels],
    }


def layer_names(spec: ResNetSpec) -> list[tuple[str, str, str]]:
    """(keras-hub layer name, class "conv"/"bn", canonical name) of every weighted layer, in the Functional's order."""
    out: list[tuple[str, str, str]] = []
    stem = spec.stem_plan()
    for i, (conv, norm) in enumerate(zip(stem.convs, stem.norms)):
        out.append((f"conv{i + 1}_conv", "conv", conv.name))
        if norm is not None:
            out.append((f"conv{i + 1}_bn", "bn", norm.name))
    for plan in spec.block_plans():
        prefix = f"stack{plan.stage - 1}_block{plan.index}"
        main: list[tuple[str, str, str]] = []
        for i, (conv, norm) in enumerate(zip(plan.convs, plan.norms)):
            if plan.preact:
                main.append((f"{prefix}_{'pre_activation' if i == 0 else i}_bn", "bn", f"{plan.name}.{norm.name}"))
                main.append((f"{prefix}_{i + 1}_conv", "conv", f"{plan.name}.{conv.name}"))
            else:
                main.append((f"{prefix}_{i + 1}_conv", "conv", f"{plan.name}.{conv.name}"))
                main.append((f"{prefix}_{i + 1}_bn", "bn", f"{plan.name}.{norm.name}"))
        if plan.downsample is not None:  # the shortcut joins the main path at the addition
            conv, norm = plan.downsample
            last_conv = max(i for i, layer in enumerate(main) if layer[1] == "conv")
            main.insert(last_conv, (f"{prefix}_0_conv", "conv", f"{plan.name}.{conv.name}"))
            if norm is not None:
                last_bn = max(i for i, layer in enumerate(main) if layer[1] == "bn")
                main.insert(last_bn, (f"{prefix}_0_bn", "bn", f"{plan.name}.{norm.name}"))
        out += main
    head = spec.head_plan()
    if head.norm is not None:
        out.append(("post_bn", "bn", head.norm.name))
    return out


def _folder_names(spec: ResNetSpec) -> list[tuple[str, str, str]]:
    """(weights-file group, class, canonical name) in order: the k-th conv is `conv2d_k`."""
    seen = {"conv": 0, "bn": 0}
    out = []
    for _, kind, canonical in layer_names(spec):
        k = seen[kind]
        seen[kind] += 1
        out.append((CLASS_FOLDERS[kind] + (f"_{k}" if k else ""), kind, canonical))
    return out


ROLES = {
    kind: tuple(KERAS_TO_TORCH_SUFFIX[name] for name in KERAS_VARIABLES[layer])[:count]
    for kind, layer, count in (("conv", "Conv2D", 1), ("bn", "BatchNormalization", 4))
}
"""Canonical tensors of each weighted layer in the order its weights file stores them (keras-hub's convs have no bias)."""


def read_preset(folder: str | Path) -> tuple[ResNetSpec, dict[str, np.ndarray]]:
    """(spec, canonical weights) of a keras-hub ResNetBackbone preset folder."""
    import h5py

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    spec = spec_from_config(config, folder / "config.json")
    path = folder / "model.weights.h5"
    if not path.is_file():
        raise CheckpointError(f"{folder}: no model.weights.h5 beside config.json")
    weights: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            for group, kind, canonical in _folder_names(spec):
                where = f"layers/{group}/vars"
                if where not in f or len(f[where]) != len(ROLES[kind]):
                    raise CheckpointError(f"{path}: {where} is not the {canonical} config.json describes")
                for i, role in enumerate(ROLES[kind]):
                    weights[f"{canonical}.{role}"] = torch_layout(np.asarray(f[where][str(i)][()], np.float32))
    except OSError as exc:
        raise CheckpointError(f"{path}: not an HDF5 weights file ({exc})") from None
    return spec, weights


class KerasHub(Library):
    """keras-hub `ResNetBackbone` preset folders (`from_preset` / `save_to_preset`), read and written without it."""

    NAME = "keras-hub"
    WRITES = "a ResNetBackbone preset folder (config.json, metadata.json, model.weights.h5)"

    def detect(self, path: Path) -> bool:
        folder = path.parent if path.is_file() and path.name == "model.weights.h5" else path
        return folder.is_dir() and is_preset(folder)

    def read(self, path: Path) -> Read:
        folder = path.parent if path.is_file() else path
        spec, weights = read_preset(folder)
        return spec, weights, {}

    def describe(self, spec: ResNetSpec) -> dict[str, Any]:
        return config_for(spec)

    def spec_of(self, description: dict[str, Any]) -> ResNetSpec:
        return spec_from_config(description, "the spec")

    def title(self, description: Any) -> str:
        return "keras-hub's ResNetBackbone"

    def write_checked(
        self, spec: ResNetSpec, weights: Mapping[str, Any], dst: Path, recorded: Mapping[str, Any], force: bool
    ) -> Path:
        return write_preset(spec, weights, dst, force)


def write_preset(spec: ResNetSpec, weights: Mapping[str, Any], dst: str | Path, force: bool = False) -> Path:
    """A preset folder `keras_hub.models.ResNetBackbone.from_preset(dst)` loads, written atomically."""
    import h5py

    from parity.core.files import atomic_folder

    config = config_for(spec)
    count = int(sum(np.asarray(weights[k]).size for k in spec.canonical_shapes()))
    metadata = {
        "keras_version": "3",
        "parameter_count": count,
        "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S"),
        "tasks": ["ImageClassifier"],
    }

    def write(folder: Path) -> None:
        (folder / "config.json").write_text(json.dumps(config, indent=4) + "\n")
        (folder / "metadata.json").write_text(json.dumps(metadata, indent=4) + "\n")
        with h5py.File(folder / "model.weights.h5", "w") as f:
            layers = f.create_group("layers")
            for group, kind, canonical in _folder_names(spec):
                variables = layers.create_group(group).create_group("vars")
                for i, role in enumerate(ROLES[kind]):
                    variables.create_dataset(
                        str(i), data=keras_layout(np.asarray(weights[f"{canonical}.{role}"], np.float32))
                    )
            f.create_group("vars")

    return atomic_folder(dst, write, force)
