"""The architecture of a canonical-named state dict, read off its keys and shapes.

A file this project wrote carries its spec; a file from elsewhere (torchvision, timm, a converted
keras.applications model) does not. The preset whose keys and shapes match exactly is taken first
(names like `resnet50d` or `wide_resnet50_2` in reports); otherwise the structure is read directly:
the stem (one conv, timm's deep or tiered stem), blocks per stage, stage widths, block kind, ResNeXt groups
and width per group, avg-down and pre-activation, channel attention (timm's SE or ECA), biases, and the head
(an fc, or none: features).
What no state dict says (BatchNorm epsilon, which conv of a bottleneck strides, where a stage strides)
takes the torchvision / timm default; pass the preset (`--arch`) where a file follows another.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from parity.io.weights import WeightMismatchError, match_shapes
from parity.spec import BLOCK_EXPANSION, NUM_BATCHES_TRACKED, PRESETS, SIZES, VARIANTS, ResNetSpec, make_spec

BLOCK_KEY = re.compile(r"^layer(\d+)\.(\d+)\.")


def _shape(weights: Mapping[str, Any], key: str) -> tuple[int, ...] | None:
    return tuple(np.shape(weights[key])) if key in weights else None


def _needed(weights: Mapping[str, Any], key: str) -> tuple[int, ...]:
    """The shape of a tensor the structure read needs; ValueError naming it where the weights lack it."""
    shape = _shape(weights, key)
    if shape is None:
        raise ValueError(f"no {key} (the structure read needs it)")
    return shape


def held_sizes(weights: Mapping[str, Any]) -> dict[str, Any]:
    """num_classes, in_channels and stem, read off `fc.weight` and the first conv where the file has them."""
    fc = _shape(weights, "fc.weight")
    conv1 = _shape(weights, "conv1.weight")
    deep = _shape(weights, "conv1.0.weight")
    held: dict[str, Any] = {}
    if fc is not None and len(fc) == 2:
        held["num_classes"] = fc[0]
    elif not any(key.startswith("fc.") for key in weights) and (conv1 or deep):
        held["num_classes"] = 0  # no head: the pooled features (timm's num_classes=0)
    if conv1 is not None and len(conv1) == 4:
        held["in_channels"] = conv1[1]
        held["stem"] = "imagenet" if conv1[2] == 7 else "cifar"
    elif deep is not None and len(deep) == 4:
        held["in_channels"] = deep[1]
        second = _shape(weights, "conv1.3.weight")
        held["stem"] = "tiered" if second is not None and second[0] != deep[0] else "deep"
    return held


def infer_spec(weights: Mapping[str, Any]) -> ResNetSpec:
    """The spec whose canonical keys and shapes the weights match exactly: a preset where one fits,
    else the structure read off the keys (any depth, widths, groups). Raises ValueError naming the
    closest preset and how the weights differ from it."""
    held = held_sizes(weights)
    if "in_channels" not in held:
        raise ValueError("cannot tell the architecture: no conv1.weight / conv1.0.weight (the first conv) of rank 4")
    closest: tuple[ResNetSpec, WeightMismatchError] | None = None
    # A preset of the file's own stem first: resnet26d given timm's tiered stem fits resnet26t's shapes too.
    for arch in sorted(PRESETS, key=lambda a: "stem" in held and make_spec(a).stem != held["stem"]):
        for variant in VARIANTS:
            try:
                spec = make_spec(arch, variant, **held)
            except ValueError:  # e.g. a variant that cannot be headless
                continue
            try:
                match_shapes(spec.canonical_shapes(), weights)
            except WeightMismatchError as mismatch:
                if closest is None or mismatch.count < closest[1].count:
                    closest = (spec, mismatch)
                continue
            return spec
    reason = ""
    try:
        spec = structure_spec(weights, held)
        match_shapes(spec.canonical_shapes(), weights)
        return spec
    except WeightMismatchError:  # read as any depth, it still does not fit: the closest preset says why
        pass
    except ValueError as exc:
        reason = f" (read as any depth: {exc})"
    count = sum(1 for key in weights if not key.endswith(NUM_BATCHES_TRACKED))
    if closest is None:  # no preset takes these sizes at all
        raise ValueError(f"no ResNet the spec describes has these {count} keys and shapes{reason}")
    spec, error = closest
    count = sum(1 for key in weights if not key.endswith(NUM_BATCHES_TRACKED))
    raise ValueError(
        f"no ResNet the spec describes has exactly these {count} keys and shapes{reason}; the closest is "
        f"{spec.name} ({spec.variant}), which differs by: {error.details}; every preset and variant was tried, so "
        "no --arch or --variant reads it: it is a family the spec does not describe (or a damaged file)"
    )


def structure_spec(weights: Mapping[str, Any], held: Mapping[str, Any]) -> ResNetSpec:
    """A spec read off the keys: blocks per stage, widths, block kind, groups, stem, shortcut and head."""
    counts: dict[int, int] = {}
    for key in weights:
        match = BLOCK_KEY.match(key)
        if match:
            stage, index = int(match[1]), int(match[2])
            counts[stage] = max(counts.get(stage, 0), index + 1)
    if not counts or sorted(counts) != list(range(1, len(counts) + 1)):
        raise ValueError(f"stages are not layer1..layerN (found {sorted(counts)})")
    layers = tuple(counts[s] for s in sorted(counts))
    block = "bottleneck" if "layer1.0.conv3.weight" in weights else "basic"
    last = "conv3" if block == "bottleneck" else "conv2"
    expansion = BLOCK_EXPANSION[block]
    widths = []
    for stage in range(1, len(layers) + 1):
        shape = _shape(weights, f"layer{stage}.0.{last}.weight")
        if shape is None or shape[0] % expansion:
            raise ValueError(f"layer{stage}.0.{last}.weight is missing or not a multiple of {expansion} channels")
        widths.append(shape[0] // expansion)
    fields: dict[str, Any] = {"block": block, "layers": layers, "widths": tuple(widths), **held}
    fields["strides"] = (1,) + (2,) * (len(layers) - 1)
    if block == "bottleneck":
        inner, per_group = _needed(weights, "layer1.0.conv2.weight")[:2]
        if per_group < 1 or inner % per_group or inner < per_group:
            raise ValueError(f"layer1.0.conv2.weight {inner} x {per_group}: not a grouped conv's shape")
        groups = inner // per_group
        width_per_group = inner * 64 // (widths[0] * groups)
        fields.update(groups=groups, width_per_group=width_per_group)
    if held.get("stem") in ("deep", "tiered"):  # the tiered stem's first conv is narrower: its second says the width
        fields.update(
            deep_stem_width=_needed(weights, "conv1.3.weight")[0], stem_width=_needed(weights, "conv1.6.weight")[0]
        )
        stem_conv = "conv1.0"
    else:
        fields["stem_width"] = _needed(weights, "conv1.weight")[0]
        stem_conv = "conv1"
    fields["preact"] = "post_bn.weight" in weights
    attention = {"se": "layer1.0.se.fc1.weight", "eca": "layer1.0.se.conv.weight"}
    fields["attn"] = next((kind for kind, key in attention.items() if key in weights), None)
    downsample_norm = any(".downsample." in k and k.endswith(".running_mean") for k in weights)
    fields["shortcut_norm"] = downsample_norm or not any(".downsample." in k for k in weights) and not fields["preact"]
    fields["avg_down"] = any(
        re.search(r"\.downsample\.1\.weight$", k) and len(np.shape(weights[k])) == 4 for k in weights
    )
    fields["conv_bias"] = "layer1.0.conv1.bias" in weights
    fields["stem_bias"] = f"{stem_conv}.bias" in weights
    fields["residual_bias"] = f"layer1.0.{last}.bias" in weights
    shortcut_conv = next(
        (k for k in weights if re.search(r"\.downsample\.[01]\.weight$", k) and len(np.shape(weights[k])) == 4), None
    )
    fields["shortcut_bias"] = shortcut_conv is not None and shortcut_conv[: -len("weight")] + "bias" in weights
    if shortcut_conv is None:
        fields["shortcut_bias"] = None
    for name in ("stem_bias", "residual_bias", "shortcut_bias"):  # None: as conv_bias, the presets' spelling
        if fields[name] == fields["conv_bias"]:
            fields[name] = None
    return named(ResNetSpec(variant="inferred", **fields))


def named(spec: ResNetSpec) -> ResNetSpec:
    """The spec with its preset and display name: the preset whose family it is at other sizes (`SIZES`), named
    after the sizes that differ ('resnet50d (widths 4-8-16-32, stem 8-8-16)'), else no preset and the block kind
    and depths ('resnet (bottleneck 1-2-1-1, groups 4)')."""
    for arch in PRESETS:
        preset = make_spec(arch)
        try:
            resized = preset.replace(**{k: getattr(spec, k) for k in SIZES})
        except ValueError:  # the preset's family cannot take these sizes (a ResNeXt's groups at narrow widths)
            continue
        if spec.differences(resized):
            continue
        differ = []
        if spec.widths != preset.widths:
            differ.append(f"widths {'-'.join(map(str, spec.widths))}")
        stem = [c.out_channels for c in spec.stem_plan().convs]
        if stem != [c.out_channels for c in preset.stem_plan().convs]:
            differ.append(f"stem {'-'.join(map(str, stem))}")
        return spec.replace(name=f"{arch} ({', '.join(differ)})" if differ else arch, preset=arch)
    groups = f", groups {spec.groups}" if spec.groups > 1 else ""
    return spec.replace(name=f"resnet ({spec.block} {'-'.join(map(str, spec.layers))}{groups})", preset=None)
