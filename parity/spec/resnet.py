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
    STAGE_NAMES_HEAD,
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

STEMS = ("imagenet", "cifar")

PADDINGS = ("symmetric", "same")
"""'symmetric': PyTorch's, `kernel // 2` on both sides (or the stem/pool paddings given); 'same':
TF/Keras 'same' on every conv and the max-pool, total `max((ceil(n / s) - 1) * s + k - n, 0)` with the
odd pixel at the bottom/right (the max-pool never picks a padded cell)."""

SHORTCUTS = ("projection", "always")
"""'projection': a 1x1 conv on the identity path only where the shape changes (torchvision);
'always': in every block, even at stride 1 with equal channels."""


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
        name: architecture name, for reports.
        variant: variant name, for reports.
        padding: "symmetric" (PyTorch) or "same" (TF/Keras 'same' on every conv and the max-pool).
        stem_padding: the stem conv's symmetric padding (None: kernel // 2).
        pool_padding: the stem max-pool's symmetric padding (0 or 1).
        stem_bias: whether the stem conv has a bias (None: conv_bias).
        shortcut_bias: whether the shortcut conv has a bias (None: conv_bias).
        shortcut: "projection" (1x1 conv where the shape changes) or "always" (in every block).
        shortcut_norm: BatchNorm after the shortcut conv.
        stem_bn_eps: the stem BN's epsilon (None: bn_eps).
        relu_before_add: a ReLU after each block's last BN, before the residual addition.
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
    padding: str = "symmetric"
    stem_padding: int | None = None
    pool_padding: int = 1
    stem_bias: bool | None = None
    shortcut_bias: bool | None = None
    shortcut: str = "projection"
    shortcut_norm: bool = True
    stem_bn_eps: float | None = None
    relu_before_add: bool = False

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
        for name in ("num_classes", "in_channels", "stem_width"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
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
        for name in ("stem_bias", "shortcut_bias"):
            if not (getattr(self, name) is None or isinstance(getattr(self, name), bool)):
                raise ValueError(f"{name} must be None (follow conv_bias), True or False, got {getattr(self, name)!r}")
        for name in ("conv_bias", "shortcut_norm", "relu_before_add", "zero_init_residual"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.stem_bn_eps is not None and not (isinstance(self.stem_bn_eps, (int, float)) and self.stem_bn_eps > 0):
            raise ValueError(f"stem_bn_eps must be None (bn_eps) or > 0, got {self.stem_bn_eps!r}")

    # -- derived numbers ---------------------------------------------------------------------------

    @property
    def expansion(self) -> int:
        return BLOCK_EXPANSION[self.block]

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Names of the outputs compared stage by stage: stem, layer1.., logits."""
        return ("stem",) + tuple(f"layer{i + 1}" for i in range(len(self.layers))) + (STAGE_NAMES_HEAD,)

    @property
    def feature_channels(self) -> int:
        return self.widths[-1] * self.expansion

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
    ) -> ConvPlan:
        # Symmetric kernel // 2 for odd kernels unless given; a 1x1 conv never pads.
        padding = kernel // 2 if padding is None else padding
        bias = self.conv_bias if bias is None else bias
        return ConvPlan(name, cin, cout, kernel, stride, padding, bias, self.padding == "same")

    def _norm(self, name: str, channels: int, zero_init: bool = False, eps: float | None = None) -> NormPlan:
        eps = self.bn_eps if eps is None else eps
        return NormPlan(name, channels, float(eps), float(self.bn_momentum), zero_init)

    def stem_plan(self) -> StemPlan:
        if self.stem == "imagenet":
            conv = self._conv("conv1", self.in_channels, self.stem_width, 7, 2, self.stem_bias, self.stem_padding)
            pool = PoolPlan("maxpool", 3, 2, self.pool_padding, self.padding == "same")
        else:
            conv = self._conv("conv1", self.in_channels, self.stem_width, 3, 1, self.stem_bias, self.stem_padding)
            pool = None
        return StemPlan(conv, self._norm("bn1", self.stem_width, eps=self.stem_bn_eps), pool)

    def block_plans(self) -> Iterator[BlockPlan]:
        cin = self.stem_width
        zero_last = self.zero_init_residual
        for s, (count, width, stage_stride) in enumerate(zip(self.layers, self.widths, self.strides)):
            cout = width * self.expansion
            for b in range(count):
                name = f"layer{s + 1}.{b}"
                stride = stage_stride if b == 0 else 1
                if self.block == "basic":
                    convs = (
                        self._conv("conv1", cin, width, 3, stride),
                        self._conv("conv2", width, width, 3, 1),
                    )
                else:
                    s1, s3 = (1, stride) if self.stride_on == "v1.5" else (stride, 1)
                    convs = (
                        self._conv("conv1", cin, width, 1, s1),
                        self._conv("conv2", width, width, 3, s3),
                        self._conv("conv3", width, cout, 1, 1),
                    )
                norms = tuple(
                    self._norm(f"bn{i + 1}", c.out_channels, zero_last and i == len(convs) - 1)
                    for i, c in enumerate(convs)
                )
                downsample = None
                if stride != 1 or cin != cout or self.shortcut == "always":
                    downsample = (
                        self._conv("downsample.0", cin, cout, 1, stride, self.shortcut_bias),
                        self._norm("downsample.1", cout) if self.shortcut_norm else None,
                    )
                yield BlockPlan(
                    name, self.block, s + 1, b, cin, cout, stride, convs, norms, downsample, self.relu_before_add
                )
                cin = cout

    def stage_blocks(self) -> list[list[BlockPlan]]:
        """Blocks grouped by stage: `stage_blocks()[0]` is layer1."""
        stages: list[list[BlockPlan]] = [[] for _ in self.layers]
        for plan in self.block_plans():
            stages[plan.stage - 1].append(plan)
        return stages

    def head_plan(self) -> HeadPlan:
        return HeadPlan("fc", self.feature_channels, self.num_classes)

    # -- tables and counts -------------------------------------------------------------------------

    def layer_table(self, height: int = 224, width: int | None = None) -> list[LayerRow]:
        """Every conv / bn / max-pool / fc, in forward order, with shapes for one input size.

        An input too small for an unpadded stem or pool is refused, naming the layer.
        """
        width = height if width is None else width
        for label, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"input {label} must be a positive int, got {value!r}")
        rows: list[LayerRow] = []
        stem = self.stem_plan()
        c, h, w = self.in_channels, height, width
        c, h, w = self._conv_rows(rows, "", stem.conv, stem.norm, c, h, w)
        if stem.pool is not None:
            ph, pw = stem.pool.output_size(h, w)
            _check_size(stem.pool.name, ph, pw, h, w)
            rows.append(
                LayerRow(
                    stem.pool.name,
                    "maxpool",
                    (c, h, w),
                    (c, ph, pw),
                    stem.pool.kernel,
                    stem.pool.stride,
                    "same" if stem.pool.same else stem.pool.padding,
                    0,
                    0,
                    0,
                )
            )
            h, w = ph, pw
        for plan in self.block_plans():
            bh, bw = h, w
            for conv, norm in zip(plan.convs, plan.norms):
                c, bh, bw = self._conv_rows(rows, plan.name + ".", conv, norm, c, bh, bw)
            if plan.downsample is not None:
                conv, norm = plan.downsample
                self._conv_rows(rows, plan.name + ".", conv, norm, plan.in_channels, h, w)
            h, w = bh, bw
        head = self.head_plan()
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

    def _conv_rows(self, rows, prefix, conv: ConvPlan, norm: NormPlan | None, c, h, w):
        oh, ow = conv.output_size(h, w)
        _check_size(prefix + conv.name, oh, ow, h, w)
        params = math.prod(conv.weight_shape) + (conv.out_channels if conv.bias else 0)
        macs = oh * ow * conv.out_channels * conv.in_channels * conv.kernel * conv.kernel
        out = (conv.out_channels, oh, ow)
        rows.append(
            LayerRow(
                prefix + conv.name,
                "conv",
                (c, h, w),
                out,
                conv.kernel,
                conv.stride,
                "same" if conv.same else conv.padding,
                params,
                0,
                macs,
            )
        )
        if norm is not None:
            rows.append(
                LayerRow(prefix + norm.name, "bn", out, out, None, None, None, 2 * norm.channels, 2 * norm.channels, 0)
            )
        return out

    def param_counts(self) -> dict[str, int]:
        """Parameter counts in both frameworks' conventions.

        Keys: 'trainable' (weights and biases), 'bn_running' (running_mean + running_var elements);
        Keras' `model.summary()`: 'keras_trainable', 'keras_non_trainable' (the BN moving statistics),
        'keras_total'; PyTorch: 'torch_parameters' (`parameters()`), 'torch_buffers' (`buffers()`:
        running statistics plus one `num_batches_tracked` per BN).
        """
        rows = self.layer_table(96 if self.stem == "imagenet" else 32)
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
        than one pixel (32 for the ImageNet stem, 8 for the CIFAR stem)."""
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
        """Output shape (C, H, W) of each compared stage, and (num_classes,) for the logits."""
        width = height if width is None else width
        rows = self.layer_table(height, width)
        shapes: dict[str, tuple[int, ...]] = {}
        stem_last = "maxpool" if self.stem == "imagenet" else "bn1"
        for r in rows:
            if r.name == stem_last:
                shapes["stem"] = r.output_shape
            stage = r.name.split(".")[0]
            if stage.startswith("layer") and r.kind == "bn" and ".downsample" not in r.name:
                shapes[stage] = r.output_shape
        shapes[STAGE_NAMES_HEAD] = (self.num_classes,)
        return shapes

    def canonical_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every canonical weight key with its PyTorch-layout shape (num_batches_tracked excluded).

        Order is torchvision's `state_dict()` order.
        """
        shapes: dict[str, tuple[int, ...]] = {}

        def conv(prefix: str, plan: ConvPlan) -> None:
            shapes[prefix + plan.name + ".weight"] = plan.weight_shape
            if plan.bias:
                shapes[prefix + plan.name + ".bias"] = (plan.out_channels,)

        def norm(prefix: str, plan: NormPlan) -> None:
            for suffix in NORM_SUFFIXES:
                shapes[prefix + plan.name + "." + suffix] = (plan.channels,)

        stem = self.stem_plan()
        conv("", stem.conv)
        norm("", stem.norm)
        for plan in self.block_plans():
            for c, n in zip(plan.convs, plan.norms):
                conv(plan.name + ".", c)
                norm(plan.name + ".", n)
            if plan.downsample is not None:
                conv(plan.name + ".", plan.downsample[0])
                if plan.downsample[1] is not None:
                    norm(plan.name + ".", plan.downsample[1])
        head = self.head_plan()
        shapes["fc.weight"] = (head.out_features, head.in_features)
        shapes["fc.bias"] = (head.out_features,)
        return shapes
