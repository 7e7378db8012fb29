"""The layers of resnet_torch and the factories that make them from the spec's plans (mirrors resnet_keras/layers.py).

`Layers` is the set of factories a `ResNet` builds with; `LAYERS` is the correct one. A variant (a naive port
the lessons measure, another attention module) is `dataclasses.replace(LAYERS, norm=...)` passed to
`ResNet(spec, layers=...)`: nothing is patched. `SameConv2d` and `SameMaxPool2d` give TF's 'same' padding where a
spec asks for it; `SameMaxPool2d` also gives keras.applications V2's zero-filled stem pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from parity.spec import AttnPlan, ConvPlan, HeadPlan, NormPlan, PoolPlan

# FRAMEWORK: layout — torch images are NCHW; Keras images are NHWC.
CHANNEL_AXIS = 1


class SameConv2d(nn.Conv2d):
    """nn.Conv2d with TF's 'same' padding, the odd pixel at the bottom/right (any stride).

    # FRAMEWORK: padding — torch's padding='same' exists for stride 1 only and pads symmetrically;
    # TF's 'same' depends on the input size, so the pad is computed per call.
    """

    def __init__(self, *args, plan: ConvPlan, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self.plan.pads(x.shape[-2], x.shape[-1])
        out = F.pad(x, (left, right, top, bottom))
        out = super().forward(out)
        return out


class SameMaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d behind the plan's own padding: TF's 'same' (odd pixel bottom/right) or symmetric, filled with
    -inf (a padded cell never wins) or, with `fill="zero"`, with zeros as Keras' ZeroPadding2D does.

    # FRAMEWORK: max-pool padding — torch pads with -inf inside the pool; a zero pad wins wherever a window's
    # real cells are all negative, which happens when no ReLU precedes the pool (keras.applications V2's stem).
    """

    def __init__(self, plan: PoolPlan):
        super().__init__(kernel_size=plan.kernel, stride=plan.stride, padding=0)
        self.plan = plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self.plan.pads(x.shape[-2], x.shape[-1])
        fill = 0.0 if self.plan.fill == "zero" else float("-inf")
        out = F.pad(x, (left, right, top, bottom), value=fill)
        out = super().forward(out)
        return out


# -- factories: one plan in, one layer out -----------------------------------------------------------------


def make_conv(plan: ConvPlan) -> nn.Conv2d:
    """A conv with torch's default init for now; `ResNet.init_weights` re-draws it as torchvision does."""
    # FRAMEWORK: padding — torch pads inside the conv, symmetrically ('same': `SameConv2d`).
    same = {"plan": plan} if plan.same else {}
    conv = (SameConv2d if plan.same else nn.Conv2d)(
        plan.in_channels,
        plan.out_channels,
        kernel_size=plan.kernel,
        stride=plan.stride,
        padding=0 if plan.same else plan.padding,
        bias=plan.bias,
        groups=plan.groups,
        **same,
    )
    return conv


def make_norm(plan: NormPlan) -> nn.BatchNorm2d:
    """BatchNorm with the spec's eps and momentum (PyTorch convention, used as is)."""
    norm = nn.BatchNorm2d(plan.channels, eps=plan.eps, momentum=plan.momentum)
    nn.init.constant_(norm.weight, 0.0 if plan.zero_init else 1.0)
    nn.init.zeros_(norm.bias)
    return norm


def make_pool(plan: PoolPlan) -> nn.Module:
    """The stem's max-pool, avg-down's average pool or V2's strided 1x1 max-pool."""
    if plan.kind == "avg":
        # FRAMEWORK: average pool edge — ceil_mode keeps the odd row/column as a window of its own and
        # count_include_pad=False averages only its real cells: TF's 'same' average (timm's avg-down).
        return nn.AvgPool2d(plan.kernel, plan.stride, ceil_mode=plan.same, count_include_pad=False)
    # FRAMEWORK: max-pool padding — torch pads with -inf inside the pool.
    if plan.same or plan.fill == "zero":
        return SameMaxPool2d(plan)
    return nn.MaxPool2d(kernel_size=plan.kernel, stride=plan.stride, padding=plan.padding)


def make_global_pool(plan: HeadPlan) -> nn.Module:
    """The head's global pool (timm's `global_pool`): average, max, or none for a backbone."""
    if plan.pooling is None:
        return nn.Identity()
    return nn.AdaptiveAvgPool2d((1, 1)) if plan.pooling == "avg" else nn.AdaptiveMaxPool2d((1, 1))


def make_fc(plan: HeadPlan) -> nn.Linear:
    """The classifier; nn.Linear's default init."""
    # FRAMEWORK: init — nn.Linear's default is U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
    return nn.Linear(plan.in_features, plan.out_features)


class SqueezeExcite(nn.Module):
    """Squeeze-excitation (timm's SEModule): global average, 1x1 conv down, ReLU, 1x1 conv up, sigmoid gate.

    Args:
        plan: the block's `AttnPlan` ('se'; its convs `fc1`, `fc2`).
    """

    def __init__(self, plan: AttnPlan):
        super().__init__()
        squeeze, excite = plan.convs
        self.fc1 = make_conv(squeeze)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = make_conv(excite)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.fc1(scale)
        scale = self.relu(scale)
        scale = self.fc2(scale)
        out = x * torch.sigmoid(scale)
        return out


class EfficientChannelAttention(nn.Module):
    """ECA (timm's EcaModule): global average, a 1-D conv across the channels, sigmoid gate.

    Args:
        plan: the block's `AttnPlan` ('eca'; its conv `conv`, rank 1).
    """

    def __init__(self, plan: AttnPlan):
        super().__init__()
        (conv,) = plan.convs
        self.conv = nn.Conv1d(1, 1, conv.kernel, padding=conv.padding, bias=conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # FRAMEWORK: layout — the channels are the 1-D conv's length: (N, 1, C) here, (N, C, 1) in Keras.
        scale = x.mean((2, 3)).unsqueeze(1)
        scale = self.conv(scale)
        scale = torch.sigmoid(scale)
        out = x * scale.transpose(1, 2).unsqueeze(-1)
        return out


ATTENTION: dict[str, Callable[[AttnPlan], nn.Module]] = {"se": SqueezeExcite, "eca": EfficientChannelAttention}
"""Attention kind (`AttnPlan.kind`) -> the module class that computes it."""


def make_attn(plan: AttnPlan) -> nn.Module:
    """The block's channel attention, by kind (`ATTENTION`)."""
    if plan.kind not in ATTENTION:
        raise ValueError(f"resnet_torch has no attention {plan.kind!r}; it builds {', '.join(ATTENTION) or 'none'}")
    return ATTENTION[plan.kind](plan)


@dataclass(frozen=True)
class Layers:
    """The factories a ResNet builds its layers with, one per kind of plan.

    Args:
        conv: ConvPlan -> conv.
        norm: NormPlan -> BatchNorm.
        pool: PoolPlan -> max or average pool.
        global_pool: HeadPlan -> the head's global pool.
        fc: HeadPlan -> the classifier.
        attn: AttnPlan -> the block's channel attention.
    """

    conv: Callable[[ConvPlan], nn.Module] = make_conv
    norm: Callable[[NormPlan], nn.Module] = make_norm
    pool: Callable[[PoolPlan], nn.Module] = make_pool
    global_pool: Callable[[HeadPlan], nn.Module] = make_global_pool
    fc: Callable[[HeadPlan], nn.Module] = make_fc
    attn: Callable[[AttnPlan], nn.Module] = make_attn


LAYERS = Layers()
"""The factories of the correct model."""
