"""Model folders other libraries write: a `config.json` beside the weights.

- transformers (`save_pretrained`): `"model_type": "resnet"`, `model.safetensors` or `pytorch_model.bin`;
- timm hub folders (`timm.models.save_for_hf`, what the Hub serves): `"architecture"`, the same weight files;
- keras-hub presets (`ResNetBackbone.save_to_preset`): `"class_name": "ResNetBackbone"`, `model.weights.h5`
  (read by `parity.io.keras_hub`).

`read_folder` gives (spec, canonical weights, what the folder records: class names, preprocessing); a folder
without weights, a config of another model, an architecture the spec cannot describe, or sizes that disagree
with the weights are refused in one line naming the file and the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter_named
from parity.core.errors import CheckpointError
from parity.io import hf, keras_hub
from parity.io.infer import SIZES, held_sizes, structure_spec
from parity.io.inputs import IMAGENET_MEAN, IMAGENET_STD
from parity.io.weights import WeightMismatchError, match_shapes
from parity.spec import NUM_BATCHES_TRACKED, PRESETS, ResNetSpec, make_spec


def read_weights(folder: Path) -> dict[str, np.ndarray]:
    """The first weight file of a folder (`model.safetensors`, else `pytorch_model.bin`), as numpy arrays."""
    for name in hf.WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if name.endswith(".safetensors"):
            from safetensors.numpy import load_file

            try:
                state = load_file(str(path))
            except Exception as exc:  # safetensors raises its own error type
                raise CheckpointError(f"{path}: not a safetensors file ({exc})") from None
        else:
            state = adapter_named("torch").read_native("torch", path, None)[1]
        return {k: v for k, v in state.items() if not k.endswith(NUM_BATCHES_TRACKED)}
    raise CheckpointError(f"{folder}: no weights ({' or '.join(hf.WEIGHT_FILES)}) beside config.json")


def is_weights_of_folder(path: str | Path) -> bool:
    """Whether a file is the weights of a transformers, timm or keras-hub folder (its config.json beside it)."""
    path = Path(path)
    if path.name == "model.weights.h5" and path.is_file() and keras_hub.is_preset(path.parent):
        return True
    if path.name not in hf.WEIGHT_FILES or not path.is_file() or not (path.parent / "config.json").is_file():
        return False
    try:
        config = json.loads((path.parent / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return config.get("model_type") == "resnet" or "architecture" in config


def kind_of(folder: Path) -> str:
    """'transformers' or 'timm', from the folder's config.json; refused otherwise, naming the file."""
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder}: a model folder needs a config.json (transformers or timm)")
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not readable JSON ({exc})") from None
    if "model_type" in config:
        return "transformers"
    if "architecture" in config:
        return "timm"
    if keras_hub.is_preset(folder):
        return "keras-hub"
    raise CheckpointError(
        f'{path}: neither transformers ("model_type"), timm ("architecture") nor a keras-hub ResNetBackbone preset'
    )


def read_folder(folder: str | Path) -> tuple[ResNetSpec, dict[str, np.ndarray], dict[str, Any]]:
    """(spec, canonical weights, recorded: {"labels": [...], "mean": ..., "std": ...}) of a model folder."""
    folder = Path(folder)
    kind = kind_of(folder)
    if kind == "keras-hub":
        spec, weights = keras_hub.read_preset(folder)
        return spec, weights, {}
    weights = read_weights(folder)
    if kind == "transformers":
        config = hf.read_config(folder)
        weights = hf.to_canonical(weights, folder)
        spec = hf.spec_from_config(config, weights, folder / "config.json")
        recorded = {"labels": hf.labels(config), **hf.preprocessing(folder)}
    else:
        config = json.loads((folder / "config.json").read_text())
        spec = _timm_spec(config, weights, folder / "config.json")
        cfg = config.get("pretrained_cfg") or {}
        size = (cfg.get("input_size") or [None, None, None])[-1]
        recorded = {"labels": config.get("label_names"), "mean": cfg.get("mean"), "std": cfg.get("std"), "size": size}
    try:
        match_shapes(spec.canonical_shapes(), weights)
    except WeightMismatchError as exc:
        raise exc.with_headline(f"{folder}: config.json describes {spec.name}, but the weights differ") from None
    return spec, weights, {k: v for k, v in recorded.items() if v}


def _timm_spec(config: dict[str, Any], weights: dict[str, np.ndarray], path: Path) -> ResNetSpec:
    """The architecture a timm config names, at the sizes its weights hold; refused where the spec has no such family."""
    arch = config["architecture"]
    if arch not in PRESETS:
        raise CheckpointError(
            f'{path}: "architecture" is {arch!r}, a timm model the spec does not describe (families: {", ".join(PRESETS)})'
        )
    held = {**held_sizes(weights), "num_classes": int(config.get("num_classes", 0))}
    held.pop("stem", None)  # the architecture names the stem
    pooling = config.get("global_pool", "avg")
    if pooling not in ("avg", "max"):
        raise CheckpointError(f'{path}: "global_pool" is {pooling!r}; the spec pools "avg" or "max"')
    preset = make_spec(arch, pooling=pooling, **held)
    try:
        match_shapes(preset.canonical_shapes(), weights)
        return preset
    except WeightMismatchError:
        pass  # another width: read the sizes off the weights, the family off the config
    found = structure_spec(weights, {**held_sizes(weights), **held})
    wanted = preset.to_dict()
    differ = [k for k, v in found.to_dict().items() if k not in SIZES and wanted[k] != v]
    if differ:
        raise CheckpointError(
            f"{path}: the weights are not a {arch}: {differ[0]} is {getattr(found, differ[0])!r} in them, "
            f"{getattr(preset, differ[0])!r} in {arch}"
        )
    return found.replace(
        name=f"{arch} ({found.name.partition('(')[2].rstrip(')') or 'timm'})", variant="timm", pooling=pooling
    )


# -- writing: a timm Hub folder (`timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(file=...))`) --

TIMM_ARCHS = tuple(name for name in PRESETS if not name.endswith("v2"))
"""The presets timm builds under the same name (its ResNet V2 is another network, `resnetv2_50`)."""


def timm_refusal(spec: ResNetSpec) -> str | None:
    """Why a spec is not a timm ResNet (named, at any width), or None."""
    base = spec.name.split(" (")[0]
    if base not in TIMM_ARCHS:
        return f"timm has no {spec.name}; its ResNets here are {', '.join(TIMM_ARCHS)}"
    preset = make_spec(base).to_dict()
    for key, value in spec.to_dict().items():
        if key not in SIZES and preset[key] != value:
            return f"timm's {base} has {key}={preset[key]!r}, the network {value!r}"
    if spec.stem != "deep" and spec.stem_width != 64:
        return f"timm's {base} has a 64-channel stem, the network {spec.stem_width}"
    return None


def timm_model_args(spec: ResNetSpec) -> dict[str, Any]:
    """The `timm.create_model` arguments that rebuild the spec's sizes."""
    base = make_spec(spec.name.split(" (")[0])
    args: dict[str, Any] = {"num_classes": spec.num_classes, "in_chans": spec.in_channels, "global_pool": spec.pooling}
    if spec.widths != base.widths:
        args["channels"] = list(spec.widths)
    if spec.stem == "deep" and (spec.deep_stem_width, spec.stem_width) != (base.deep_stem_width, base.stem_width):
        if spec.stem_width != 2 * spec.deep_stem_width:
            raise ValueError(
                f"timm's deep stem is w-w-2w, the network {spec.deep_stem_width}-{spec.deep_stem_width}-{spec.stem_width}"
            )
        args["stem_width"] = spec.deep_stem_width
    return args


def write_timm_folder(
    spec: ResNetSpec, weights: dict[str, np.ndarray], dst: str | Path, recorded: dict | None = None, force: bool = False
) -> Path:
    """A timm Hub folder (config.json + model.safetensors, timm's names = canonical), written atomically."""
    from safetensors.numpy import save_file

    from parity.core.files import atomic_folder

    why = timm_refusal(spec)
    if why:
        raise ValueError(f"{dst}: cannot write {spec.name} for timm: {why}")
    recorded = recorded or {}
    base = spec.name.split(" (")[0]
    args = timm_model_args(spec)
    config = {
        "architecture": base,
        "num_classes": spec.num_classes,
        "num_features": spec.feature_channels,
        "global_pool": spec.pooling,
        "model_args": args,
        "pretrained_cfg": {
            "num_classes": spec.num_classes,
            "input_size": [spec.in_channels, 224, 224],
            "interpolation": "bicubic",
            "crop_pct": 0.875,
            "mean": list(recorded.get("mean") or IMAGENET_MEAN),  # timm's default for its ResNets
            "std": list(recorded.get("std") or IMAGENET_STD),
            "first_conv": spec.stem_plan().conv.name,
            "classifier": "fc",
        },
    }
    if recorded.get("labels"):
        config["label_names"] = list(recorded["labels"])
    tensors = {}
    for key in spec.canonical_shapes():
        tensors[key] = np.ascontiguousarray(weights[key], dtype=np.float32)
        if key.endswith(".running_var"):  # timm's state dicts carry torch's counter
            tensors[key[: -len("running_var")] + NUM_BATCHES_TRACKED] = np.zeros((), np.int64)

    def write(folder: Path) -> None:
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})

    return atomic_folder(dst, write, force)
