"""Presets: the five depths, the named variants and the input size each was written for."""

from __future__ import annotations

import dataclasses
from typing import Any

from parity.spec.resnet import ResNetSpec

VARIANTS: dict[str, dict[str, Any]] = {
    # torchvision.models.resnet*: stride on the 3x3, no conv bias, eps 1e-5, momentum 0.1.
    "torchvision": {},
    # The paper's / Caffe's bottleneck: stride on the first 1x1.
    "v1": {"stride_on": "v1"},
    # keras.applications.ResNet50/101/152: v1 stride, biased convs, eps 1.001e-5.
    "keras_applications": {"stride_on": "v1", "conv_bias": True, "bn_eps": 1.001e-5},
    # PyTorch's default Conv2d(bias=True) left on everywhere, shortcut included.
    "conv_bias": {"conv_bias": True},
    # Written the Keras way: 'same' padding on every conv and the max-pool, use_bias left on, Keras'
    # BatchNormalization defaults (eps 1e-3, momentum 0.99 = 0.01 in PyTorch's convention), and the
    # shortcut always a biased 1x1 conv without BatchNorm, even at stride 1.
    "same_bias_conv_shortcut": {
        "padding": "same",
        "conv_bias": True,
        "bn_eps": 1e-3,
        "bn_momentum": 0.01,
        "shortcut": "always",
        "shortcut_norm": False,
    },
    # Stem conv 7x7/2 unpadded with a bias, stem BN eps 1e-3, a ReLU after the last BN before the
    # addition, a biased 1x1 shortcut conv without BatchNorm where the shape changes; 10 classes at 96x96.
    "unpadded_stem_relu_before_add": {
        "stem_padding": 0,
        "stem_bias": True,
        "stem_bn_eps": 1e-3,
        "relu_before_add": True,
        "shortcut_bias": True,
        "shortcut_norm": False,
        "num_classes": 10,
    },
    # The paper's bottleneck (stride on the first 1x1) with an unpadded max-pool; 4 classes.
    "v1_unpadded_pool": {"stride_on": "v1", "pool_padding": 0, "num_classes": 4},
    # Pre-activation (He et al. 2016, "Identity Mappings"), laid out as keras-hub's
    # `ResNetBackbone(use_pre_activation=True)`: the stride on the first block, unbiased convs, no stem BN.
    "preact": {"preact": True, "shortcut_norm": False},
}
"""Named sets of overrides on top of an architecture preset; names say what differs from torchvision."""

DEFAULT_INPUT_SIZE = 224
"""ImageNet's crop: the input size every preset is written for unless its variant says otherwise."""

VARIANT_INPUT_SIZE = {"unpadded_stem_relu_before_add": 96}
"""The input size a variant's network was written for (DEFAULT_INPUT_SIZE where not listed)."""


def input_size(variant: str) -> int:
    """The input size a variant's network was written for."""
    return VARIANT_INPUT_SIZE.get(variant, DEFAULT_INPUT_SIZE)


ARCHS: dict[str, dict[str, Any]] = {
    "resnet18": {"block": "basic", "layers": (2, 2, 2, 2)},
    "resnet34": {"block": "basic", "layers": (3, 4, 6, 3)},
    "resnet50": {"block": "bottleneck", "layers": (3, 4, 6, 3)},
    "resnet101": {"block": "bottleneck", "layers": (3, 4, 23, 3)},
    "resnet152": {"block": "bottleneck", "layers": (3, 8, 36, 3)},
}
"""The five depths exactly as torchvision builds them (He et al. 2016, table 1)."""

_DEEP = {"stem": "deep"}  # ResNet-C: three 3x3 convs, 32-32-64
_D = {"stem": "deep", "avg_down": True}  # ResNet-D: deep stem and the avg-down shortcut
_T = {"stem": "tiered", "avg_down": True}  # timm's ResNet-T: the tiered deep stem (24-32-64) and avg-down
# keras.applications' ResNet V2: the stride on each stage's *last* block (the last stage has none), a
# strided 1x1 max-pool as its identity shortcut, a biased stem conv without BN before a zero-padded
# pool, the projection and each block's last conv biased, BN epsilon 1.001e-5.
_KERAS_V2 = {
    "block": "bottleneck",
    "preact": True,
    "strides": (2, 2, 2, 1),
    "stride_at": "last",
    "shortcut": "subsample",
    "shortcut_norm": False,
    "stem_bias": True,
    "shortcut_bias": True,
    "residual_bias": True,
    "pool_fill": "zero",
    "bn_eps": 1.001e-5,
}

FAMILIES: dict[str, dict[str, Any]] = {
    # timm's names for other depths of torchvision's ResNet.
    "resnet26": {"block": "bottleneck", "layers": (2, 2, 2, 2)},
    "resnet200": {"block": "bottleneck", "layers": (3, 24, 36, 3)},
    # ResNet-C and ResNet-D ("Bag of Tricks", He et al. 2019) as timm builds them.
    "resnet50c": {"block": "bottleneck", "layers": (3, 4, 6, 3), **_DEEP},
    "resnet18d": {"block": "basic", "layers": (2, 2, 2, 2), **_D},
    "resnet26d": {"block": "bottleneck", "layers": (2, 2, 2, 2), **_D},
    "resnet34d": {"block": "basic", "layers": (3, 4, 6, 3), **_D},
    "resnet50d": {"block": "bottleneck", "layers": (3, 4, 6, 3), **_D},
    "resnet101d": {"block": "bottleneck", "layers": (3, 4, 23, 3), **_D},
    "resnet152d": {"block": "bottleneck", "layers": (3, 8, 36, 3), **_D},
    "resnet200d": {"block": "bottleneck", "layers": (3, 24, 36, 3), **_D},
    # ResNeXt and Wide ResNet, as torchvision's resnet.py builds them beside the plain ResNets.
    "resnext50_32x4d": {"block": "bottleneck", "layers": (3, 4, 6, 3), "groups": 32, "width_per_group": 4},
    "resnext101_32x8d": {"block": "bottleneck", "layers": (3, 4, 23, 3), "groups": 32, "width_per_group": 8},
    "resnext101_64x4d": {"block": "bottleneck", "layers": (3, 4, 23, 3), "groups": 64, "width_per_group": 4},
    "wide_resnet50_2": {"block": "bottleneck", "layers": (3, 4, 6, 3), "width_per_group": 128},
    "wide_resnet101_2": {"block": "bottleneck", "layers": (3, 4, 23, 3), "width_per_group": 128},
    # timm's squeeze-excitation (SENet) and efficient-channel-attention ResNets, and its tiered-stem ResNet-T.
    "seresnet18": {"block": "basic", "layers": (2, 2, 2, 2), "attn": "se"},
    "seresnet50": {"block": "bottleneck", "layers": (3, 4, 6, 3), "attn": "se"},
    "seresnext50_32x4d": {
        "block": "bottleneck",
        "layers": (3, 4, 6, 3),
        "groups": 32,
        "width_per_group": 4,
        "attn": "se",
    },
    "ecaresnet50d": {"block": "bottleneck", "layers": (3, 4, 6, 3), "attn": "eca", **_D},
    "resnet26t": {"block": "bottleneck", "layers": (2, 2, 2, 2), **_T},
    "resnet50t": {"block": "bottleneck", "layers": (3, 4, 6, 3), **_T},
    # keras.applications ResNet50V2 / 101V2 / 152V2.
    "resnet50v2": {"layers": (3, 4, 6, 3), **_KERAS_V2},
    "resnet101v2": {"layers": (3, 4, 23, 3), **_KERAS_V2},
    "resnet152v2": {"layers": (3, 8, 36, 3), **_KERAS_V2},
}
"""The families other libraries ship, by those libraries' names (timm, torchvision, keras.applications)."""

PRESETS: dict[str, dict[str, Any]] = {**ARCHS, **FAMILIES}
"""Every named architecture `make_spec` builds: the five depths, then the families."""

SOURCES: dict[str, str] = {
    **{arch: "torchvision" for arch in ARCHS},
    **{arch: "timm" for arch in FAMILIES},
    **{arch: "torchvision" for arch in FAMILIES if arch.startswith(("resnext", "wide_resnet"))},
    **{arch: "keras.applications" for arch in FAMILIES if arch.endswith("v2")},
}
"""The library whose layout each preset is, as it names it: what a report calls its default variant."""


def layout_name(spec: ResNetSpec) -> str:
    """How reports name a network's layout: its variant, where the default variant ('torchvision') would misname
    a preset of another library ('timm' for resnet50d, 'keras.applications' for resnet50v2)."""
    if spec.variant == "torchvision" and spec.preset in SOURCES:
        return SOURCES[spec.preset]
    return spec.variant


OPTIMIZERS = ("sgd", "adam")
"""Update rules both backends train with, in torch's conventions (`resnet_torch.train`, `resnet_keras.train`)."""


def make_spec(arch: str, variant: str = "torchvision", **overrides: Any) -> ResNetSpec:
    """The spec of a preset architecture, with a named variant and field overrides applied.

    Args:
        arch: one of `PRESETS`: "resnet18" ... "resnet152", or a family ("resnet50d", "resnext50_32x4d",
            "wide_resnet50_2", "resnet50v2", ...).
        variant: one of `VARIANTS`.
        **overrides: any `ResNetSpec` field, e.g. num_classes=10, in_channels=1, stem="cifar".
    """
    if arch not in PRESETS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(PRESETS)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    known = {f.name for f in dataclasses.fields(ResNetSpec)} - {"name", "variant", "preset"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown spec field(s) for {arch}: {', '.join(unknown)}")
    fields = {**PRESETS[arch], **VARIANTS[variant], **overrides}
    return ResNetSpec(name=arch, variant=variant, preset=arch, **fields)


def parse_archs(text: str) -> list[str]:
    """'resnet18,resnet50d' or 'all' (the five depths) -> list of preset names (validated)."""
    names = list(ARCHS) if text.strip() == "all" else [a.strip() for a in text.split(",") if a.strip()]
    if not names:
        raise ValueError("no architecture given")
    for name in names:
        if name not in PRESETS:
            raise ValueError(f"unknown arch {name!r}; choose from {', '.join(PRESETS)} or 'all'")
    return names
