"""timm ResNets: Hub folders (`timm.models.save_for_hf`: `config.json` with "architecture" beside the weights).

timm's state-dict names are the canonical ones (torchvision's, and timm's own for the deep stem, avg-down and
attention), so a bare timm state dict is read as any checkpoint; a folder adds the architecture, the sizes and
the preprocessing (`pretrained_cfg`). Written back for
`timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(file=dst/"model.safetensors",
num_classes=N), **model_args)` (timm drops a classifier whose size differs from its registered weights' unless the
overlay gives the count), or the Hub's `hf-hub:` loading, which reads the config itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from parity.core.errors import CheckpointError
from parity.core.files import atomic_folder
from parity.io.infer import held_sizes, named, structure_spec
from parity.io.inputs import IMAGENET_MEAN, IMAGENET_STD
from parity.io.libraries import Library, Read, folder_of, folder_weights, peek_config, read_config
from parity.io.weights import WeightMismatchError, match_shapes
from parity.spec import NUM_BATCHES_TRACKED, PRESETS, SIZES, ResNetSpec, make_spec

TIMM_ARCHS = tuple(name for name in PRESETS if not name.endswith("v2"))
"""The presets timm builds under the same name (its ResNet V2 is another network, `resnetv2_50`)."""


def model_args(spec: ResNetSpec) -> dict[str, Any]:
    """The `timm.create_model` arguments that rebuild the spec's sizes on its preset."""
    base = make_spec(str(spec.preset))
    args: dict[str, Any] = {"num_classes": spec.num_classes, "in_chans": spec.in_channels, "global_pool": spec.pooling}
    if spec.widths != base.widths:
        args["channels"] = list(spec.widths)
    if spec.stem_plan().deep and (spec.deep_stem_width, spec.stem_width) != (base.deep_stem_width, base.stem_width):
        args["stem_width"] = spec.deep_stem_width  # timm's deep stems end in 2 x stem_width channels
    return args


def spec_from_args(arch: str, args: Mapping[str, Any]) -> ResNetSpec:
    """The network `timm.create_model(arch, **args)` builds."""
    fields: dict[str, Any] = {
        "num_classes": int(args.get("num_classes", 1000)),
        "in_channels": int(args.get("in_chans", 3)),
        "pooling": args.get("global_pool", "avg"),
    }
    if "channels" in args:
        fields["widths"] = tuple(int(c) for c in args["channels"])
    if "stem_width" in args:
        fields.update(deep_stem_width=int(args["stem_width"]), stem_width=2 * int(args["stem_width"]))
    return make_spec(arch, **fields)


def spec_from_config(config: Mapping[str, Any], weights: Mapping[str, Any], path: Path) -> ResNetSpec:
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
    differ = [k for k in found.differences(preset) if k not in SIZES]
    if differ:
        raise CheckpointError(
            f"{path}: the weights are not a {arch}: {differ[0]} is {getattr(found, differ[0])!r} in them, "
            f"{getattr(preset, differ[0])!r} in {arch}"
        )
    return named(found.replace(pooling=pooling)).replace(preset=arch, variant="timm")


class Timm(Library):
    """timm Hub folders: config.json ("architecture", "model_args", "pretrained_cfg") + model.safetensors."""

    NAME = "timm"
    WRITES = "a Hub folder (config.json + model.safetensors) for timm.create_model"

    def detect(self, path: Path) -> bool:
        folder = folder_of(path)
        return folder.is_dir() and "architecture" in peek_config(folder) and "model_type" not in peek_config(folder)

    def read(self, path: Path) -> Read:
        folder = folder_of(path)
        config = read_config(folder / "config.json")
        weights = folder_weights(folder)
        spec = spec_from_config(config, weights, folder / "config.json")
        try:
            match_shapes(spec.canonical_shapes(), weights)
        except WeightMismatchError as exc:
            raise exc.with_headline(f"{folder}: config.json describes {spec.name}, but the weights differ") from None
        cfg = config.get("pretrained_cfg") or {}
        size = (cfg.get("input_size") or [None, None, None])[-1]
        recorded = {"labels": config.get("label_names"), "mean": cfg.get("mean"), "std": cfg.get("std"), "size": size}
        return spec, weights, {k: v for k, v in recorded.items() if v}

    def describe(self, spec: ResNetSpec) -> dict[str, Any]:
        if spec.preset not in TIMM_ARCHS:
            raise ValueError(f"timm has no {spec.name}; its ResNets here are {', '.join(TIMM_ARCHS)}")
        return {"architecture": spec.preset, "model_args": model_args(spec)}

    def spec_of(self, description: dict[str, Any]) -> ResNetSpec:
        return spec_from_args(description["architecture"], description["model_args"])

    def title(self, description: Any) -> str:
        return f"timm's {description['architecture']}"

    def write_checked(
        self, spec: ResNetSpec, weights: Mapping[str, Any], dst: Path, recorded: Mapping[str, Any], force: bool
    ) -> Path:
        """A timm Hub folder (config.json + model.safetensors, timm's names = canonical)."""
        from safetensors.numpy import save_file

        config: dict[str, Any] = {
            "architecture": spec.preset,
            "num_classes": spec.num_classes,
            "num_features": spec.feature_channels,
            "global_pool": spec.pooling,
            "model_args": model_args(spec),
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
