"""`SpecFields`: the fields that describe a ResNet, their validation, and the numbers that follow from them
directly. `parity.spec.planner.SpecPlans` adds the plans a backend builds from, `parity.spec.resnet.ResNetSpec`
the tables, counts and conversions: one dataclass, written in three modules."""

from __future__ import annotations

import math
from dataclasses import dataclass

from parity.spec.plans import POOL_FILLS, POOLINGS, _is_int

BLOCK_EXPANSION = {"basic": 1, "bottleneck": 4}
"""Output channels of a block = stage width * expansion."""

STRIDE_ON = ("v1.5", "v1")
"""Where a bottleneck puts its stride: 'v1.5' on the 3x3 conv (torchvision), 'v1' on the first 1x1
(the original paper, Caffe and keras.applications)."""

STEMS = ("imagenet", "cifar", "deep", "tiered")
"""'imagenet': 7x7/2 conv + 3x3/2 max-pool (torchvision); 'cifar': 3x3/1 conv, no pool; 'deep': three
3x3 convs (stride 2, 1, 1; `deep_stem_width`, `deep_stem_width`, `stem_width` channels) + the max-pool,
ResNet-C of "Bag of Tricks" (timm `stem_type='deep'`, keras-hub `*_vd`); 'tiered': the deep stem with a
narrower first conv, `3 * (deep_stem_width // 4)` channels (timm `stem_type='deep_tiered'`: 24-32-64)."""

ATTENTION = ("se", "eca")
"""Channel attention in every block (timm's `attn_layer`), after its last norm, before the addition:
'se' squeeze-excitation (Hu et al. 2018: global average, 1x1 conv down to `se_channels`, ReLU, 1x1 conv up,
sigmoid gate), 'eca' efficient channel attention (Wang et al. 2020: global average, a 1-D conv of
`eca_kernel` taps across the channels, sigmoid gate)."""

SE_RATIO = 1 / 16
SE_DIVISOR = 8
"""timm's SEModule: the squeeze keeps `channels * SE_RATIO`, rounded to a multiple of SE_DIVISOR (at least one)."""

ECA_GAMMA = 2
ECA_BETA = 1
"""ECA's kernel: t = int(|log2(channels) + ECA_BETA| / ECA_GAMMA), made odd (t + 1 if even), at least 3."""

STRIDE_AT = ("first", "last")
"""Which block of a stage carries its stride: the first (torchvision, timm, keras-hub) or the last
(keras.applications' ResNet V2, whose identity shortcut there is a strided 1x1 max-pool)."""

PADDINGS = ("symmetric", "same")
"""'symmetric': PyTorch's, `kernel // 2` on both sides (or the stem/pool paddings given); 'same':
TF/Keras 'same' on every conv and the max-pool, total `max((ceil(n / s) - 1) * s + k - n, 0)` with the
odd pixel at the bottom/right (the max-pool never picks a padded cell)."""

SHORTCUTS = ("projection", "always", "subsample", "first")
"""'projection': a 1x1 conv on the identity path only where the shape changes (torchvision);
'always': in every block, even at stride 1 with equal channels; 'subsample': the conv only where the
channels change, a strided 1x1 max-pool where only the size does (keras.applications V2); 'first': where the
shape changes and in the first block of every stage (keras-hub's `*_vd` basic blocks: layer1.0 projects 64 -> 64)."""

LABELS = ("name", "variant", "preset")
"""Fields that name a network; every other field shapes what it computes."""

SIZES = ("widths", "stem_width", "deep_stem_width", "num_classes", "in_channels", "pooling")
"""Fields that make a narrower or re-headed copy of a preset, not another family."""

BASE_WIDTH = 64
"""torchvision's `base_width`: a bottleneck's inner width is `int(width * width_per_group / 64) * groups`."""


@dataclass(frozen=True)
class SpecFields:
    """A ResNet, described without any framework.

    Args:
        block: "basic" (two 3x3 convs) or "bottleneck" (1x1, 3x3, 1x1; expansion 4).
        layers: blocks per stage; stage i is named `layer{i+1}`.
        widths: base width of each stage (a bottleneck's output is width * 4).
        strides: stride of the first block of each stage.
        stride_on: "v1.5" (stride on the bottleneck's 3x3, torchvision) or "v1" (on its first 1x1).
        stem: "imagenet" (7x7/2 conv + 3x3/2 max-pool) or "cifar" (3x3/1 conv, no pool).
        stem_width: channels of the stem conv.
        conv_bias: whether convolutions carry a bias.
        bn_eps: BatchNorm epsilon.
        bn_momentum: BatchNorm momentum in PyTorch's convention (weight of the new batch).
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        zero_init_residual: start the last BN of each block at gamma = 0 (torchvision's option).
        name: the network's display name, for reports ("resnet50", "resnet50d (widths 4-8-16-32)").
        variant: variant name, for reports.
        preset: the preset (`parity.spec.PRESETS`) this network is, at these sizes (None: no preset's family);
            the writers for other libraries read it, nothing parses `name`.
        padding: "symmetric" (PyTorch) or "same" (TF/Keras 'same' on every conv and the max-pool).
        stem_padding: the stem conv's symmetric padding (None: kernel // 2).
        pool_padding: the stem max-pool's symmetric padding (0 or 1).
        stem_bias: whether the stem conv has a bias (None: conv_bias).
        shortcut_bias: whether the shortcut conv has a bias (None: conv_bias).
        shortcut: "projection" (1x1 conv where the shape changes) or "always" (in every block).
        shortcut_norm: BatchNorm after the shortcut conv.
        stem_bn_eps: the stem BN's epsilon (None: bn_eps).
        relu_before_add: a ReLU after each block's last BN, before the residual addition.
        groups: groups of each bottleneck's 3x3 conv (ResNeXt: 32 or 64).
        width_per_group: torchvision's width per group; the bottleneck's inner width is
            `int(width * width_per_group / 64) * groups` (Wide ResNet: 128).
        deep_stem_width: channels of the deep stem's first two convs (timm's `stem_width`, 32).
        avg_down: ResNet-D's shortcut where it projects at stride 2: a 2x2 average pool, then a stride-1 1x1 conv.
        preact: pre-activation blocks (ResNet V2): BN-ReLU before each conv, no BN in the stem, a
            final BN-ReLU (`post_bn`) before the head.
        stride_at: "first" or "last" block of each stage carries the stage's stride.
        residual_bias: whether each block's last conv has a bias (None: conv_bias).
        pool_fill: what the stem max-pool pads with: "-inf" or "zero" (keras.applications V2).
        pooling: the head's global pool, "avg", "max" or None (the last stage's map, a backbone).
        attn: channel attention in every block: None, "se" or "eca" (`ATTENTION`).
    """

    block: str
    layers: tuple[int, ...]
    widths: tuple[int, ...] = (64, 128, 256, 512)
    strides: tuple[int, ...] = (1, 2, 2, 2)
    stride_on: str = "v1.5"
    stem: str = "imagenet"
    stem_width: int = 64
    conv_bias: bool = False
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    num_classes: int = 1000
    in_channels: int = 3
    zero_init_residual: bool = False
    name: str = "resnet"
    variant: str = "torchvision"
    preset: str | None = None
    padding: str = "symmetric"
    stem_padding: int | None = None
    pool_padding: int = 1
    stem_bias: bool | None = None
    shortcut_bias: bool | None = None
    shortcut: str = "projection"
    shortcut_norm: bool = True
    stem_bn_eps: float | None = None
    relu_before_add: bool = False
    groups: int = 1
    width_per_group: int = BASE_WIDTH
    deep_stem_width: int = 32
    avg_down: bool = False
    preact: bool = False
    stride_at: str = "first"
    residual_bias: bool | None = None
    pool_fill: str = "-inf"
    pooling: str | None = "avg"
    attn: str | None = None

    def __post_init__(self) -> None:
        # Normalise lists to tuples so a spec built from JSON compares and hashes equal.
        for name in ("layers", "widths", "strides"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        self.validate()

    # -- validation ------------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        if self.block not in BLOCK_EXPANSION:
            raise ValueError(f"block must be one of {sorted(BLOCK_EXPANSION)}, got {self.block!r}")
        for name in ("layers", "widths", "strides"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not value:
                raise ValueError(f"{name} must be a non-empty tuple of ints, got {value!r}")
            if not all(_is_int(v) for v in value):
                raise ValueError(f"{name} must hold ints, got {value!r}")
        n = len(self.layers)
        for name in ("widths", "strides"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"{name} has {len(getattr(self, name))} entries but layers has {n}: "
                    "every stage needs a block count, a width and a stride"
                )
        if any(v < 1 for v in self.layers):
            raise ValueError(f"layers must be >= 1 block per stage, got {self.layers}")
        if any(v < 1 for v in self.widths):
            raise ValueError(f"widths must be positive, got {self.widths}")
        if any(v not in (1, 2) for v in self.strides):
            raise ValueError(f"strides must be 1 or 2, got {self.strides}")
        if self.stride_on not in STRIDE_ON:
            raise ValueError(f"stride_on must be one of {STRIDE_ON}, got {self.stride_on!r}")
        if self.stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {self.stem!r}")
        for name in ("in_channels", "stem_width", "groups", "width_per_group", "deep_stem_width"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not _is_int(self.num_classes) or self.num_classes < 0:
            raise ValueError(
                f"num_classes must be an int >= 0 (0: no fc, the pooled features), got {self.num_classes!r}"
            )
        if not (isinstance(self.bn_eps, (int, float)) and self.bn_eps > 0):
            raise ValueError(f"bn_eps must be > 0, got {self.bn_eps!r}")
        if not (isinstance(self.bn_momentum, (int, float)) and 0 < self.bn_momentum <= 1):
            raise ValueError(f"bn_momentum must be in (0, 1] (PyTorch convention), got {self.bn_momentum!r}")
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {self.padding!r}")
        if self.shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {self.shortcut!r}")
        if self.stem_padding is not None and (not _is_int(self.stem_padding) or self.stem_padding < 0):
            raise ValueError(f"stem_padding must be None (kernel // 2) or an int >= 0, got {self.stem_padding!r}")
        if not _is_int(self.pool_padding) or self.pool_padding not in (0, 1):
            raise ValueError(f"pool_padding must be 0 or 1 (at most half the 3x3 pool), got {self.pool_padding!r}")
        if not (self.preset is None or isinstance(self.preset, str)):
            raise ValueError(f"preset must be None or a preset's name, got {self.preset!r}")
        for name in ("stem_bias", "shortcut_bias", "residual_bias"):
            if not (getattr(self, name) is None or isinstance(getattr(self, name), bool)):
                raise ValueError(f"{name} must be None (follow conv_bias), True or False, got {getattr(self, name)!r}")
        for name in ("conv_bias", "shortcut_norm", "relu_before_add", "zero_init_residual", "avg_down", "preact"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.stem_bn_eps is not None and not (isinstance(self.stem_bn_eps, (int, float)) and self.stem_bn_eps > 0):
            raise ValueError(f"stem_bn_eps must be None (bn_eps) or > 0, got {self.stem_bn_eps!r}")
        self._validate_families()

    def _validate_families(self) -> None:
        if self.block == "basic" and (self.groups != 1 or self.width_per_group != BASE_WIDTH):
            raise ValueError(
                f"groups and width_per_group apply to bottleneck blocks only (torchvision's BasicBlock "
                f"refuses them), got groups={self.groups}, width_per_group={self.width_per_group}"
            )
        if self.block == "bottleneck":
            for width in self.widths:
                if self.inner_width(width) < 1:
                    raise ValueError(
                        f"stage width {width} with width_per_group={self.width_per_group} gives a bottleneck "
                        "no channels (int(width * width_per_group / 64) is 0)"
                    )
        if self.stem == "tiered" and self.deep_stem_width < 4:
            raise ValueError(
                f"a tiered stem's first conv has 3 * (deep_stem_width // 4) channels: deep_stem_width >= 4, got {self.deep_stem_width}"
            )
        if self.stride_at not in STRIDE_AT:
            raise ValueError(f"stride_at must be one of {STRIDE_AT}, got {self.stride_at!r}")
        if self.pool_fill not in POOL_FILLS:
            raise ValueError(f"pool_fill must be one of {POOL_FILLS}, got {self.pool_fill!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if not (self.attn is None or self.attn in ATTENTION):
            raise ValueError(f"attn must be None or one of {ATTENTION}, got {self.attn!r}")
        if self.pooling is None and self.num_classes:
            raise ValueError(
                f"pooling=None keeps the feature map, which an fc cannot take: pass num_classes=0, got {self.num_classes}"
            )
        if self.preact:
            clashes = {
                "relu_before_add": self.relu_before_add,  # nothing follows the addition in a pre-activation block
                "shortcut_norm": self.shortcut_norm,  # the shortcut reads an already normalised input
                "zero_init_residual": self.zero_init_residual,  # the block's last layer is a conv, not a BN
            }
            for name, value in clashes.items():
                if value:
                    raise ValueError(f"preact=True has no place for {name}=True (pass {name}=False)")
            if self.stem_bn_eps is not None:
                raise ValueError("preact=True has no stem BN, so stem_bn_eps must be None")

    # -- derived numbers ---------------------------------------------------------------------------

    @property
    def expansion(self) -> int:
        return BLOCK_EXPANSION[self.block]

    @property
    def feature_channels(self) -> int:
        return self.widths[-1] * self.expansion

    def se_channels(self, channels: int) -> int:
        """The squeeze-excitation's inner channels for a block of `channels` outputs (timm's make_divisible)."""
        return max(SE_DIVISOR, int(channels * SE_RATIO + SE_DIVISOR / 2) // SE_DIVISOR * SE_DIVISOR)

    def eca_kernel(self, channels: int) -> int:
        """ECA's 1-D kernel across `channels` (odd, at least 3)."""
        taps = int(abs(math.log(channels, 2) + ECA_BETA) / ECA_GAMMA)  # timm computes it so, not log2
        return max(taps if taps % 2 else taps + 1, 3)

    def inner_width(self, width: int) -> int:
        """A bottleneck's 3x3 channels for a stage of base width `width` (torchvision's rule)."""
        return int(width * (self.width_per_group / BASE_WIDTH)) * self.groups
