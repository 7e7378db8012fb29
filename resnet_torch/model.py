"""ResNet as a `torch.nn.Module`, built from a `parity.spec.ResNetSpec`.

Read side by side with `resnet_keras/model.py`: same classes, same method order, same local names.
Every intentional difference is tagged `# FRAMEWORK:`. Helper layers live in `resnet_torch/layers.py`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from parity.spec import BlockPlan, ConvPlan, HeadPlan, NormPlan, PoolPlan, ResNetSpec
from resnet_torch.layers import CHANNEL_AXIS, SameConv2d, SameMaxPool2d


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
        **same,
    )
    return conv


def make_norm(plan: NormPlan) -> nn.BatchNorm2d:
    """BatchNorm with the spec's eps and momentum (PyTorch convention, used as is)."""
    norm = nn.BatchNorm2d(plan.channels, eps=plan.eps, momentum=plan.momentum)
    nn.init.constant_(norm.weight, 0.0 if plan.zero_init else 1.0)
    nn.init.zeros_(norm.bias)
    return norm


def make_pool(plan: PoolPlan) -> nn.MaxPool2d:
    # FRAMEWORK: max-pool padding — torch pads with -inf inside the pool.
    if plan.same:
        return SameMaxPool2d(plan)
    return nn.MaxPool2d(kernel_size=plan.kernel, stride=plan.stride, padding=plan.padding)


def make_fc(plan: HeadPlan) -> nn.Linear:
    # FRAMEWORK: init — nn.Linear's default is U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
    return nn.Linear(plan.in_features, plan.out_features)


class BasicBlock(nn.Module):
    """Two 3x3 convs and a residual connection (ResNet-18/34).

    Args:
        plan: the block's `BlockPlan` from the spec.
    """

    expansion = 1

    def __init__(self, plan: BlockPlan):
        super().__init__()
        # FRAMEWORK: init order — torchvision builds the shortcut before the block (its default init draws
        # first) and registers it last; Keras draws every initialiser at build time, in call order.
        downsample = make_downsample(plan)
        self.conv1 = make_conv(plan.convs[0])
        self.bn1 = make_norm(plan.norms[0])
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = make_conv(plan.convs[1])
        self.bn2 = make_norm(plan.norms[1])
        self.downsample = downsample
        self.relu_before_add = plan.relu_before_add

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.relu_before_add:
            out = self.relu(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out = out + identity
        out = self.relu(out)
        return out


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand, and a residual connection (ResNet-50/101/152).

    Args:
        plan: the block's `BlockPlan` from the spec (it says which conv carries the stride).
    """

    expansion = 4

    def __init__(self, plan: BlockPlan):
        super().__init__()
        # FRAMEWORK: init order — torchvision builds the shortcut before the block (its default init draws
        # first) and registers it last; Keras draws every initialiser at build time, in call order.
        downsample = make_downsample(plan)
        self.conv1 = make_conv(plan.convs[0])
        self.bn1 = make_norm(plan.norms[0])
        self.conv2 = make_conv(plan.convs[1])
        self.bn2 = make_norm(plan.norms[1])
        self.conv3 = make_conv(plan.convs[2])
        self.bn3 = make_norm(plan.norms[2])
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.relu_before_add = plan.relu_before_add

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv3(out)
        out = self.bn3(out)
        if self.relu_before_add:
            out = self.relu(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out = out + identity
        out = self.relu(out)
        return out


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


def make_downsample(plan: BlockPlan) -> nn.Sequential | None:
    """The identity path's 1x1 conv + BN, named `downsample.0` / `downsample.1` as torchvision."""
    if plan.downsample is None:
        return None
    conv, norm = plan.downsample
    if norm is None:
        return nn.Sequential(make_conv(conv))
    return nn.Sequential(make_conv(conv), make_norm(norm))


class ResNet(nn.Module):
    """A ResNet whose `state_dict()` is torchvision's, key for key.

    Args:
        spec: the architecture; see `parity.spec.make_spec`.
    """

    def __init__(self, spec: ResNetSpec):
        super().__init__()
        if not isinstance(spec, ResNetSpec):
            raise TypeError(f"spec must be a ResNetSpec, got {type(spec).__name__}")
        self.spec = spec
        stem = spec.stem_plan()
        self.conv1 = make_conv(stem.conv)
        self.bn1 = make_norm(stem.norm)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = make_pool(stem.pool) if stem.pool is not None else nn.Identity()
        for index, plans in enumerate(spec.stage_blocks()):
            # torchvision's `layer1` .. `layer4` attributes, each an nn.Sequential of blocks.
            blocks = [BLOCKS[plan.kind](plan) for plan in plans]
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = make_fc(spec.head_plan())
        self.init_weights()

    def init_weights(self) -> None:
        """torchvision's init, draw for draw: every conv re-drawn kaiming normal (fan_out, relu gain) in
        `modules()` order after every module drew its default init at construction; BN gamma 1 (0 for each
        block's last BN with `zero_init_residual`) and beta 0; the fc keeps nn.Linear's default.

        Under the same `torch.manual_seed`, `resnet18()` .. `resnet152()` equal torchvision's bit for bit.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:  # torchvision's convs have none; the biased variants start at 0
                    nn.init.zeros_(module.bias)

    @property
    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.spec.layers))]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless x is a float tensor (N, in_channels, H, W)."""
        if x.dim() != 4 or x.shape[CHANNEL_AXIS] != self.spec.in_channels:
            raise ValueError(f"expected input of shape (N, {self.spec.in_channels}, H, W) (NCHW), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(
                f"expected a float input, got {str(x.dtype).replace('torch.', '')}: convert and "
                "normalise images first (e.g. x.float() / 255, then the mean/std the weights were trained with)"
            )

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 -> bn1 -> relu -> maxpool."""
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.maxpool(out)
        return out

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Global average pool -> fc: the last stage's map to logits."""
        out = self.avgpool(x)
        # FRAMEWORK: flatten — (N, C, 1, 1) -> (N, C); order matters only for a head that
        # flattens a spatial map, which this one never does.
        out = torch.flatten(out, 1)
        out = self.fc(out)
        return out

    def forward_stages(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """Run the network and return every stage output: stem, layer1.., logits (NCHW)."""
        self.check_input(x)
        outputs: OrderedDict[str, torch.Tensor] = OrderedDict()
        out = self.forward_stem(x)
        outputs["stem"] = out
        for index, stage in enumerate(self.stages):
            out = stage(out)
            outputs[f"layer{index + 1}"] = out
        out = self.forward_head(out)
        outputs["logits"] = out
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)["logits"]
