"""`ResNetSpec`: a ResNet described without any framework; its fields (`parity.spec.fields`), its plans
(`parity.spec.planner`), and here the layer table, the counts, the canonical shapes and the conversions."""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

from parity.spec.fields import LABELS
from parity.spec.planner import SpecPlans
from parity.spec.plans import NORM_SUFFIXES, AttnPlan, ConvPlan, LayerRow, NormPlan, PoolPlan, _check_size

Shape = tuple[int, int, int]
"""(channels, height, width) of one image's activations."""


@dataclass(frozen=True)
class ResNetSpec(SpecPlans):
    """A ResNet, described without any framework: the fields of `parity.spec.fields.SpecFields` (documented
    there, with their validation), the plans of `parity.spec.planner.SpecPlans`, and the tables below.
    Frozen and hashable; `to_dict` / `from_dict` round-trip through JSON."""

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
            if plan.attn is not None:
                self._attn_rows(rows, prefix, plan.attn)
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

    def _conv_row(self, rows: list[LayerRow], prefix: str, conv: ConvPlan, shape: Shape) -> Shape:
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
    def _attn_rows(rows: list[LayerRow], prefix: str, attn: AttnPlan) -> None:
        """The attention's convs, on the pooled (C, 1, 1) map ('se') or across the C channels ('eca')."""
        for conv in attn.convs:
            params = math.prod(conv.weight_shape) + (conv.out_channels if conv.bias else 0)
            if conv.rank == 1:
                shape: tuple[int, ...] = (conv.in_channels, attn.channels)
                out: tuple[int, ...] = (conv.out_channels, attn.channels)
                macs = attn.channels * conv.in_channels * conv.kernel
            else:
                shape, out = (conv.in_channels, 1, 1), (conv.out_channels, 1, 1)
                macs = conv.in_channels * conv.out_channels
            rows.append(LayerRow(prefix + conv.name, "conv", shape, out, conv.kernel, 1, conv.padding, params, 0, macs))

    @staticmethod
    def _norm_row(rows: list[LayerRow], prefix: str, norm: NormPlan, shape: Shape) -> None:
        rows.append(
            LayerRow(prefix + norm.name, "bn", shape, shape, None, None, None, 2 * norm.channels, 2 * norm.channels, 0)
        )

    @staticmethod
    def _pool_row(rows: list[LayerRow], prefix: str, pool: PoolPlan, shape: Shape) -> Shape:
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

        Order is torchvision's `state_dict()` order (timm's for the deep stem, avg-down, attention and post_bn).
        A new dict each call, from a cache per spec (reading a file tries every preset's shapes).
        """
        return dict(_canonical_shapes(self))

    def _canonical_shapes(self) -> dict[str, tuple[int, ...]]:
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


@functools.lru_cache(maxsize=256)
def _canonical_shapes(spec: ResNetSpec) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple(spec._canonical_shapes().items())
