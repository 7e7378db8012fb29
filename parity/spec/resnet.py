"""`ResNetSpec`: the fields that describe a ResNet, their validation, and what follows from them
(plans, the layer table, parameter counts, canonical weight shapes)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from parity.spec.plans import (
    NORM_SUFFIXES,
    POOL_FILLS,
    POOLINGS,
    BlockPlan,
    ConvPlan,
    HeadPlan,
    LayerRow,
    NormPlan,
    PoolPlan,
    StemPlan,
    _check_size,
    _is_int,
)

BLOCK_EXPANSION = {"basic": 1, "bottleneck": 4}
"""Output channels of a block = stage width * expansion."""

STRIDE_ON = ("v1.5", "v1")
"""Where a bottleneck puts its stride: 'v1.5' on the 3x3 conv (torchvision), 'v1' on the first 1x1
(the original paper, Caffe and keras.applications)."""

STEMS = ("imagenet", "cifar", "deep")
"""'imagenet': 7x7/2 conv + 3x3/2 max-pool (torchvision); 'cifar': 3x3/1 conv, no pool; 'deep': three
3x3 convs (stride 2, 1, 1; `deep_stem_width`, `deep_stem_width`, `stem_width` channels) + the max-pool,
ResNet-C of "Bag of Tricks" (timm `stem_type='deep'`, keras-hub `*_vd`)."""

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
class ResNetSpec:
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
        if self.stride_at not in STRIDE_AT:
            raise ValueError(f"stride_at must be one of {STRIDE_AT}, got {self.stride_at!r}")
        if self.pool_fill not in POOL_FILLS:
            raise ValueError(f"pool_fill must be one of {POOL_FILLS}, got {self.pool_fill!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
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
    def output_name(self) -> str:
        """The last stage output's name: 'logits' with an fc, 'features' without (num_classes=0)."""
        return self.head_plan().output_name

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Names of the outputs compared stage by stage: stem, layer1.., logits (or features)."""
        return ("stem",) + tuple(f"layer{i + 1}" for i in range(len(self.layers))) + (self.output_name,)

    @property
    def depth(self) -> int:
        """Layers with weights on the main path: stem convs, each block's convs and the fc (18 for resnet18,
        50 for resnet50, 52 for resnet50d)."""
        convs_per_block = 2 if self.block == "basic" else 3
        return len(self.stem_plan().convs) + convs_per_block * sum(self.layers) + (1 if self.num_classes else 0)

    @property
    def feature_channels(self) -> int:
        return self.widths[-1] * self.expansion

    def inner_width(self, width: int) -> int:
        """A bottleneck's 3x3 channels for a stage of base width `width` (torchvision's rule)."""
        return int(width * (self.width_per_group / BASE_WIDTH)) * self.groups

    def replace(self, **overrides: Any) -> ResNetSpec:
        """A copy with some fields changed (validated)."""
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"unknown spec field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict; `ResNetSpec.from_dict` inverts it."""
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in dataclasses.fields(self)
        }

    def differences(self, other: ResNetSpec) -> list[str]:
        """The fields (LABELS aside) whose values differ from `other`'s, in field order."""
        return [
            f.name
            for f in dataclasses.fields(self)
            if f.name not in LABELS and getattr(self, f.name) != getattr(other, f.name)
        ]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResNetSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown spec field(s): {', '.join(unknown)}")
        return cls(**data)

    # -- plans the backends build from --------------------------------------------------------------

    def _conv(
        self,
        name: str,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        bias: bool | None = None,
        padding: int | None = None,
        groups: int = 1,
    ) -> ConvPlan:
        # Symmetric kernel // 2 for odd kernels unless given; a 1x1 conv never pads.
        padding = kernel // 2 if padding is None else padding
        bias = self.conv_bias if bias is None else bias
        return ConvPlan(name, cin, cout, kernel, stride, padding, bias, self.padding == "same", groups)

    def _norm(self, name: str, channels: int, zero_init: bool = False, eps: float | None = None) -> NormPlan:
        eps = self.bn_eps if eps is None else eps
        return NormPlan(name, channels, float(eps), float(self.bn_momentum), zero_init)

    def stem_plan(self) -> StemPlan:
        same = self.padding == "same"
        last_norm = None if self.preact else self._norm("bn1", self.stem_width, eps=self.stem_bn_eps)
        pool = PoolPlan("maxpool", 3, 2, self.pool_padding, same, "max", self.pool_fill)
        if self.stem == "imagenet":
            conv = self._conv("conv1", self.in_channels, self.stem_width, 7, 2, self.stem_bias, self.stem_padding)
            return StemPlan((conv,), (last_norm,), pool)
        if self.stem == "cifar":
            conv = self._conv("conv1", self.in_channels, self.stem_width, 3, 1, self.stem_bias, self.stem_padding)
            return StemPlan((conv,), (last_norm,), None)
        # Deep stem: timm's Sequential conv1 = [conv, bn, relu, conv, bn, relu, conv]; its indices are the names.
        mid = self.deep_stem_width
        convs = (
            self._conv("conv1.0", self.in_channels, mid, 3, 2, self.stem_bias, self.stem_padding),
            self._conv("conv1.3", mid, mid, 3, 1, self.stem_bias),
            self._conv("conv1.6", mid, self.stem_width, 3, 1, self.stem_bias),
        )
        norms = (self._norm("conv1.1", mid), self._norm("conv1.4", mid), last_norm)
        return StemPlan(convs, norms, pool)

    def _block_stride(self, index: int, count: int, stage_stride: int) -> int:
        carrier = 0 if self.stride_at == "first" else count - 1
        return stage_stride if index == carrier else 1

    def _shortcut(self, cin: int, cout: int, stride: int, first: bool) -> tuple[PoolPlan | None, tuple | None]:
        """(pool, (conv, norm)) of the identity path; both None for a plain identity."""
        channels_change = cin != cout
        if self.shortcut == "subsample" and not channels_change:
            pool = PoolPlan("downsample.0", 1, stride, 0, kind="max") if stride != 1 else None
            return pool, None
        forced = self.shortcut == "always" or (self.shortcut == "first" and first)
        if not (stride != 1 or channels_change or forced):
            return None, None
        norm_name = "downsample.1"
        if self.avg_down:  # timm's downsample_avg: [pool (Identity at stride 1), conv, norm]
            pool = PoolPlan("downsample.0", 2, stride, 0, same=True, kind="avg") if stride != 1 else None
            conv = self._conv("downsample.1", cin, cout, 1, 1, self.shortcut_bias)
            norm_name = "downsample.2"
        else:
            pool = None
            conv = self._conv("downsample.0", cin, cout, 1, stride, self.shortcut_bias)
        norm = self._norm(norm_name, cout) if self.shortcut_norm else None
        return pool, (conv, norm)

    def block_plans(self) -> Iterator[BlockPlan]:
        cin = self.stem_width
        zero_last = self.zero_init_residual
        for s, (count, width, stage_stride) in enumerate(zip(self.layers, self.widths, self.strides)):
            cout = width * self.expansion
            for b in range(count):
                name = f"layer{s + 1}.{b}"
                stride = self._block_stride(b, count, stage_stride)
                last_bias = self.residual_bias
                if self.block == "basic":
                    convs = (
                        self._conv("conv1", cin, width, 3, stride),
                        self._conv("conv2", width, width, 3, 1, last_bias),
                    )
                else:
                    inner = self.inner_width(width)
                    s1, s3 = (1, stride) if self.stride_on == "v1.5" else (stride, 1)
                    convs = (
                        self._conv("conv1", cin, inner, 1, s1),
                        self._conv("conv2", inner, inner, 3, s3, groups=self.groups),
                        self._conv("conv3", inner, cout, 1, 1, last_bias),
                    )
                if self.preact:  # bn{i} normalises conv{i}'s input
                    norms = tuple(self._norm(f"bn{i + 1}", c.in_channels) for i, c in enumerate(convs))
                else:
                    norms = tuple(
                        self._norm(f"bn{i + 1}", c.out_channels, zero_last and i == len(convs) - 1)
                        for i, c in enumerate(convs)
                    )
                pool, downsample = self._shortcut(cin, cout, stride, b == 0)
                yield BlockPlan(
                    name,
                    self.block,
                    s + 1,
                    b,
                    cin,
                    cout,
                    stride,
                    convs,
                    norms,
                    downsample,
                    self.relu_before_add,
                    self.preact,
                    pool,
                )
                cin = cout

    def stage_blocks(self) -> list[list[BlockPlan]]:
        """Blocks grouped by stage: `stage_blocks()[0]` is layer1."""
        stages: list[list[BlockPlan]] = [[] for _ in self.layers]
        for plan in self.block_plans():
            stages[plan.stage - 1].append(plan)
        return stages

    def head_plan(self) -> HeadPlan:
        norm = self._norm("post_bn", self.feature_channels) if self.preact else None
        return HeadPlan("fc", self.feature_channels, self.num_classes, self.pooling, norm)

    # -- tables and counts -------------------------------------------------------------------------

    def layer_table(self, height: int = 224, width: int | None = None) -> list[LayerRow]:
        """Every conv / bn / pool / fc, in forward order, with shapes for one input size.

        An input too small for an unpadded stem or pool is refused, naming the layer.
        """
        width = height if width is None else width
        for label, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"input {label} must be a positive int, got {value!r}")
        rows: list[LayerRow] = []
        stem = self.stem_plan()
        c, h, w = self.in_channels, height, width
        for conv, norm in zip(stem.convs, stem.norms):
            c, h, w = self._conv_row(rows, "", conv, (c, h, w))
            if norm is not None:
                self._norm_row(rows, "", norm, (c, h, w))
        if stem.pool is not None:
            c, h, w = self._pool_row(rows, "", stem.pool, (c, h, w))
        for plan in self.block_plans():
            shape = (c, h, w)
            prefix = plan.name + "."
            for conv, norm in zip(plan.convs, plan.norms):
                if plan.preact:
                    self._norm_row(rows, prefix, norm, shape)
                shape = self._conv_row(rows, prefix, conv, shape)
                if not plan.preact:
                    self._norm_row(rows, prefix, norm, shape)
            identity = (c, h, w)
            if plan.shortcut_pool is not None:
                identity = self._pool_row(rows, prefix, plan.shortcut_pool, identity)
            if plan.downsample is not None:
                conv, norm = plan.downsample
                identity = self._conv_row(rows, prefix, conv, identity)
                if norm is not None:
                    self._norm_row(rows, prefix, norm, identity)
            if identity != shape:  # a spec inconsistency, never a user input: fail loudly
                raise AssertionError(f"{plan.name}: shortcut gives {identity}, main path {shape}")
            c, h, w = shape
        head = self.head_plan()
        if head.norm is not None:
            self._norm_row(rows, "", head.norm, (c, h, w))
        if head.out_features:
            fc_params = head.in_features * head.out_features + head.out_features
            rows.append(
                LayerRow(
                    head.name,
                    "fc",
                    (head.in_features,),
                    (head.out_features,),
                    None,
                    None,
                    None,
                    fc_params,
                    0,
                    head.in_features * head.out_features,
                )
            )
        return rows

    def _conv_row(self, rows, prefix, conv: ConvPlan, shape) -> tuple[int, int, int]:
        c, h, w = shape
        oh, ow = conv.output_size(h, w)
        _check_size(prefix + conv.name, oh, ow, h, w)
        params = math.prod(conv.weight_shape) + (conv.out_channels if conv.bias else 0)
        macs = oh * ow * conv.out_channels * (conv.in_channels // conv.groups) * conv.kernel * conv.kernel
        out = (conv.out_channels, oh, ow)
        padding = "same" if conv.same else conv.padding
        rows.append(
            LayerRow(prefix + conv.name, "conv", shape, out, conv.kernel, conv.stride, padding, params, 0, macs)
        )
        return out

    @staticmethod
    def _norm_row(rows, prefix, norm: NormPlan, shape) -> None:
        rows.append(
            LayerRow(prefix + norm.name, "bn", shape, shape, None, None, None, 2 * norm.channels, 2 * norm.channels, 0)
        )

    @staticmethod
    def _pool_row(rows, prefix, pool: PoolPlan, shape) -> tuple[int, int, int]:
        c, h, w = shape
        ph, pw = pool.output_size(h, w)
        _check_size(prefix + pool.name, ph, pw, h, w)
        padding = "same" if pool.same else pool.padding
        out = (c, ph, pw)
        rows.append(
            LayerRow(prefix + pool.name, pool.kind + "pool", shape, out, pool.kernel, pool.stride, padding, 0, 0, 0)
        )
        return out

    def param_counts(self) -> dict[str, int]:
        """Parameter counts in both frameworks' conventions.

        Keys: 'trainable' (weights and biases), 'bn_running' (running_mean + running_var elements);
        Keras' `model.summary()`: 'keras_trainable', 'keras_non_trainable' (the BN moving statistics),
        'keras_total'; PyTorch: 'torch_parameters' (`parameters()`), 'torch_buffers' (`buffers()`:
        running statistics plus one `num_batches_tracked` per BN).
        """
        rows = self.layer_table(self.total_stride * 3)
        trainable = sum(r.params for r in rows)
        running = sum(r.buffers for r in rows)
        norms = sum(1 for r in rows if r.kind == "bn")
        return {
            "trainable": trainable,
            "bn_running": running,
            "keras_trainable": trainable,
            "keras_non_trainable": running,
            "keras_total": trainable + running,
            "torch_parameters": trainable,
            "torch_buffers": running + norms,
        }

    @property
    def total_stride(self) -> int:
        """How much the stem and stages downsample: the smallest input every stride-2 layer sees as more
        than one pixel (32 for the ImageNet and deep stems, 8 for the CIFAR stem)."""
        stem = self.stem_plan()
        stride = stem.conv.stride * (stem.pool.stride if stem.pool is not None else 1)
        return stride * math.prod(self.strides)

    def activation_elements(self, height: int = 224, width: int | None = None) -> int:
        """Elements of every conv and BN output of one image: what a forward pass writes."""
        return sum(math.prod(r.output_shape) for r in self.layer_table(height, width) if r.kind in ("conv", "bn"))

    def macs(self, height: int = 224, width: int | None = None) -> int:
        """Multiply-accumulates of one image (convs and fc; BN, ReLU, pools and adds not counted)."""
        return sum(r.macs for r in self.layer_table(height, width))

    def stage_shapes(self, height: int, width: int | None = None) -> dict[str, tuple[int, ...]]:
        """Output shape (C, H, W) of each compared stage, and of the head's output: (num_classes,),
        (channels,) pooled features, or the (C, H, W) map of a backbone."""
        width = height if width is None else width
        rows = self.layer_table(height, width)
        shapes: dict[str, tuple[int, ...]] = {}
        stem_rows = {layer.name for layer in self.stem_plan().layers()} | {"maxpool"}
        blocks = {plan.name: plan for plan in self.block_plans()}
        for r in rows:
            if r.name in stem_rows:
                shapes["stem"] = r.output_shape
            block = r.name.rsplit(".", 1)[0]
            if block in blocks and ".downsample" not in r.name and r.kind in ("conv", "bn"):
                shapes[block.split(".")[0]] = r.output_shape
        head = self.head_plan()
        last = shapes[f"layer{len(self.layers)}"]
        shapes[head.output_name] = (head.out_features,) if head.out_features else (last[0],) if head.pooling else last
        return shapes

    def canonical_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every canonical weight key with its PyTorch-layout shape (num_batches_tracked excluded).

        Order is torchvision's `state_dict()` order (timm's for the deep stem, avg-down and post_bn).
        """
        shapes: dict[str, tuple[int, ...]] = {}

        def add(prefix: str, plan: ConvPlan | NormPlan) -> None:
            if isinstance(plan, NormPlan):
                for suffix in NORM_SUFFIXES:
                    shapes[prefix + plan.name + "." + suffix] = (plan.channels,)
                return
            shapes[prefix + plan.name + ".weight"] = plan.weight_shape
            if plan.bias:
                shapes[prefix + plan.name + ".bias"] = (plan.out_channels,)

        for layer in self.stem_plan().layers():
            add("", layer)
        for plan in self.block_plans():
            for layer in plan.layers():
                add(plan.name + ".", layer)
        head = self.head_plan()
        if head.norm is not None:
            add("", head.norm)
        if head.out_features:
            shapes["fc.weight"] = (head.out_features, head.in_features)
            shapes["fc.bias"] = (head.out_features,)
        return shapes
