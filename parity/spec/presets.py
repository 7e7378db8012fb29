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

OPTIMIZERS = ("sgd", "adam")
"""Update rules both backends train with, in torch's conventions (`resnet_torch.train`, `resnet_keras.train`)."""


def make_spec(arch: str, variant: str = "torchvision", **overrides: Any) -> ResNetSpec:
    """The spec of a preset architecture, with a named variant and field overrides applied.

    Args:
        arch: one of `ARCHS` ("resnet18" ... "resnet152").
        variant: one of `VARIANTS`.
        **overrides: any `ResNetSpec` field, e.g. num_classes=10, in_channels=1, stem="cifar".
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    known = {f.name for f in dataclasses.fields(ResNetSpec)} - {"name", "variant"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown spec field(s) for {arch}: {', '.join(unknown)}")
    fields = {**ARCHS[arch], **VARIANTS[variant], **overrides}
    return ResNetSpec(name=arch, variant=variant, **fields)


def parse_archs(text: str) -> list[str]:
    """'resnet18,resnet50' or 'all' -> list of arch names (validated)."""
    names = list(ARCHS) if text.strip() == "all" else [a.strip() for a in text.split(",") if a.strip()]
    if not names:
        raise ValueError("no architecture given")
    for name in names:
        if name not in ARCHS:
            raise ValueError(f"unknown arch {name!r}; choose from {', '.join(ARCHS)} or 'all'")
    return names
