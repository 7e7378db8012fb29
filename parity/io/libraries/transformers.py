"""Hugging Face transformers ResNets (`ResNetForImageClassification`, `ResNetModel`) <-> canonical weights and spec.

A `save_pretrained` folder holds `config.json` and `model.safetensors` (or `pytorch_model.bin`). Names map by rule:

| transformers | canonical |
|---|---|
| `resnet.embedder.embedder.convolution` / `.normalization` | `conv1` / `bn1` |
| `resnet.encoder.stages.{s}.layers.{b}.layer.{i}.convolution` / `.normalization` | `layer{s+1}.{b}.conv{i+1}` / `.bn{i+1}` |
| `resnet.encoder.stages.{s}.layers.{b}.shortcut.convolution` / `.normalization` | `layer{s+1}.{b}.downsample.0` / `.1` |
| `classifier.1` | `fc` |

`ResNetModel` (no head) drops the `resnet.` prefix and has no classifier: the pooled features (num_classes 0).
The config's fields become the spec: `depths` (blocks per stage), `hidden_sizes` (each stage's output channels),
`embedding_size` (the stem), `layer_type`, `num_channels`, `downsample_in_bottleneck` (the stride on the first 1x1,
the paper's v1), `downsample_in_first_stage` (layer1 strides too) and the labels (`id2label`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from parity.core.errors import CheckpointError
from parity.core.files import atomic_folder
from parity.io.infer import named
from parity.io.libraries import Library, Read, folder_of, folder_weights, peek_config, read_config
from parity.io.weights import WeightMismatchError, match_shapes
from parity.spec import BLOCK_EXPANSION, ResNetSpec

KEY = re.compile(
    r"^(?:resnet\.)?(?:embedder\.embedder\.(?P<stem>convolution|normalization)"
    r"|encoder\.stages\.(?P<stage>\d+)\.layers\.(?P<block>\d+)\."
    r"(?:shortcut|layer\.(?P<index>\d+))\.(?P<kind>convolution|normalization))\.(?P<tensor>\w+)$"
)
CLASSIFIER = re.compile(r"^classifier\.1\.(weight|bias)$")


def is_hf_state(keys: Any) -> bool:
    """Whether a state dict is named as transformers' ResNet (its stem key, with or without the head)."""
    return any(str(k).startswith(("resnet.embedder.", "embedder.embedder.")) for k in keys)


def canonical_key(key: str) -> str:
    """`resnet.encoder.stages.1.layers.0.shortcut.normalization.weight` -> `layer2.0.downsample.1.weight`."""
    found = CLASSIFIER.match(key)
    if found:
        return f"fc.{found[1]}"
    found = KEY.match(key)
    if found is None:
        raise KeyError(f"transformers ResNet key {key!r} has no canonical name")
    norm = found["kind"] == "normalization" or found["stem"] == "normalization"
    if found["stem"]:
        return ("bn1" if norm else "conv1") + "." + found["tensor"]
    prefix = f"layer{int(found['stage']) + 1}.{found['block']}."
    if found["index"] is None:
        return prefix + ("downsample.1" if norm else "downsample.0") + "." + found["tensor"]
    return prefix + ("bn" if norm else "conv") + f"{int(found['index']) + 1}.{found['tensor']}"


def to_canonical(state: Mapping[str, Any], source: Any = "the state dict") -> dict[str, Any]:
    """Canonical weights of a transformers ResNet state dict; refuses a key that maps to nothing, naming it."""
    weights = {}
    for key, value in state.items():
        try:
            weights[canonical_key(key)] = value
        except KeyError as exc:
            raise CheckpointError(f"{source}: {exc.args[0]}") from None
    return weights


def hf_key(key: str) -> str:
    """The transformers name of a canonical key (`layer2.0.downsample.1.weight` -> `resnet.encoder.stages.1...`)."""
    name, tensor = key.rsplit(".", 1)
    if name == "fc":
        return f"classifier.1.{tensor}"
    if name in ("conv1", "bn1"):
        return f"resnet.embedder.embedder.{'convolution' if name == 'conv1' else 'normalization'}.{tensor}"
    stage, block, *rest = name.split(".")
    prefix = f"resnet.encoder.stages.{int(stage[len('layer') :]) - 1}.layers.{block}."
    if rest[0] == "downsample":
        return prefix + ("shortcut.convolution." if rest[1] == "0" else "shortcut.normalization.") + tensor
    kind, index = rest[0][:-1], int(rest[0][-1])
    return prefix + f"layer.{index - 1}." + ("convolution." if kind == "conv" else "normalization.") + tensor


def spec_from_config(config: Mapping[str, Any], headless: bool, path: Any = "config.json") -> ResNetSpec:
    """The spec a transformers ResNetConfig describes; `headless`: a `ResNetModel` (no classifier)."""
    try:
        block = {"basic": "basic", "bottleneck": "bottleneck"}[config.get("layer_type", "bottleneck")]
        hidden = [int(h) for h in config["hidden_sizes"]]
        depths = tuple(int(d) for d in config["depths"])
        expansion = BLOCK_EXPANSION[block]
        if any(h % expansion for h in hidden):
            raise ValueError(f"hidden_sizes {hidden} are not multiples of the bottleneck's {expansion}")
        if config.get("hidden_act", "relu") != "relu":
            raise ValueError(f"hidden_act is {config['hidden_act']!r}; the spec's blocks use relu")
        fields: dict[str, Any] = {
            "block": block,
            "layers": depths,
            "widths": tuple(h // expansion for h in hidden),
            "strides": (2 if config.get("downsample_in_first_stage") else 1,) + (2,) * (len(depths) - 1),
            "stride_on": "v1" if config.get("downsample_in_bottleneck") else "v1.5",
            "stem_width": int(config.get("embedding_size", 64)),
            "in_channels": int(config.get("num_channels", 3)),
            "num_classes": 0 if headless else len(config.get("id2label") or {}),
        }
        spec = ResNetSpec(variant="transformers", **fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: config.json does not describe a ResNet the spec can build ({exc})") from None
    found = named(spec)
    return found.replace(variant="torchvision") if found.name == found.preset else found  # a preset as it is


def preprocessing(folder: Path) -> dict[str, Any]:
    """mean, std and size from a folder's preprocessor_config.json (transformers' image processor), if it has one."""
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return {}
    config = read_config(path)
    size = config.get("crop_size") or config.get("size") or {}
    size = size.get("height") or size.get("shortest_edge") if isinstance(size, dict) else size
    return {"mean": config.get("image_mean"), "std": config.get("image_std"), "size": size}


def labels(config: Mapping[str, Any]) -> list[str] | None:
    """The class names a transformers config records (`id2label`), in index order, or None."""
    id2label = config.get("id2label") or {}
    return [str(id2label.get(str(i), id2label.get(i, i))) for i in range(len(id2label))] or None


def config_for(spec: ResNetSpec, names: list[str] | None = None) -> dict[str, Any]:
    """The config.json transformers' `ResNetConfig` reads for a spec."""
    names = names or [f"LABEL_{i}" for i in range(spec.num_classes)]
    if len(names) != spec.num_classes:
        raise ValueError(f"{len(names)} labels for a network of {spec.num_classes} classes")
    return {
        "architectures": ["ResNetForImageClassification" if spec.num_classes else "ResNetModel"],
        "model_type": "resnet",
        "num_channels": spec.in_channels,
        "embedding_size": spec.stem_width,
        "hidden_sizes": [w * spec.expansion for w in spec.widths],
        "depths": list(spec.layers),
        "layer_type": spec.block,
        "hidden_act": "relu",
        "downsample_in_first_stage": spec.strides[0] == 2,
        "downsample_in_bottleneck": spec.stride_on == "v1",
        "id2label": {str(i): name for i, name in enumerate(names)},
        "label2id": {name: i for i, name in enumerate(names)},
    }


class Transformers(Library):
    """`ResNetForImageClassification.from_pretrained(folder)` folders, and state dicts named its way."""

    NAME = "transformers"
    WRITES = "a save_pretrained folder (config.json + model.safetensors)"

    def detect(self, path: Path) -> bool:
        folder = folder_of(path)
        if not folder.is_dir():
            return False
        config = peek_config(folder)
        # a folder of another transformers model is still transformers': read() says it is not a ResNet
        return "model_type" in config and (folder == path or config["model_type"] == "resnet")

    def read(self, path: Path) -> Read:
        folder = folder_of(path)
        config = read_config(folder / "config.json")
        if config.get("model_type") != "resnet":
            raise CheckpointError(
                f'{folder / "config.json"}: "model_type" is {config.get("model_type")!r}, not "resnet" '
                "(a transformers ResNet)"
            )
        weights = to_canonical(folder_weights(folder), folder)
        spec = spec_from_config(config, "fc.weight" not in weights, folder / "config.json")
        try:
            match_shapes(spec.canonical_shapes(), weights)
        except WeightMismatchError as exc:
            raise exc.with_headline(f"{folder}: config.json describes {spec.name}, but the weights differ") from None
        recorded = {"labels": labels(config), **preprocessing(folder)}
        return spec, weights, {k: v for k, v in recorded.items() if v}

    def describe(self, spec: ResNetSpec) -> dict[str, Any]:
        return config_for(spec)

    def spec_of(self, description: dict[str, Any]) -> ResNetSpec:
        return spec_from_config(description, description["architectures"] == ["ResNetModel"])

    def title(self, description: Any) -> str:
        return "transformers' ResNet"

    def write_checked(
        self, spec: ResNetSpec, weights: Mapping[str, Any], dst: Path, recorded: Mapping[str, Any], force: bool
    ) -> Path:
        """A `save_pretrained`-style folder (config.json + model.safetensors); a headless spec is written as
        `ResNetModel` (no `resnet.` prefix)."""
        from safetensors.numpy import save_file

        config = config_for(spec, recorded.get("labels"))
        tensors = {}
        for key in spec.canonical_shapes():
            name = hf_key(key)
            name = name if spec.num_classes else name.removeprefix("resnet.")
            tensors[name] = np.ascontiguousarray(weights[key], dtype=np.float32)
            if key.endswith(".running_var"):  # transformers' state dicts carry torch's counter
                tensors[name[: -len("running_var")] + "num_batches_tracked"] = np.zeros((), np.int64)

        def write(folder: Path) -> None:
            (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
            save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})

        return atomic_folder(dst, write, force)

    def names(self, state: Mapping[str, Any], source: Any) -> dict[str, Any] | None:
        return to_canonical(state, source) if is_hf_state(state) else None
