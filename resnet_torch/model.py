"""ResNet as a `torch.nn.Module`, built from a `parity.spec.ResNetSpec`.

Read side by side with `resnet_keras/model.py`: same classes, same method order, same local names.
Every intentional difference is tagged `# FRAMEWORK:`. Helper layers live in `resnet_torch/layers.py`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from parity.spec import BlockPlan, ConvPlan, HeadPlan, NormPlan, PoolPlan, ResNetSpec, StemPlan
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


class PreActBasicBlock(nn.Module):
    """BN-ReLU before each of two 3x3 convs (ResNet V2); a projection reads the pre-activated input.

    Args:
        plan: the block's `BlockPlan` from the spec (`preact` True).
    """

    expansion = 1

    def __init__(self, plan: BlockPlan):
        super().__init__()
        downsample = make_downsample(plan)
        self.bn1 = make_norm(plan.norms[0])
        self.conv1 = make_conv(plan.convs[0])
        self.bn2 = make_norm(plan.norms[1])
        self.conv2 = make_conv(plan.convs[1])
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.project = plan.downsample is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.bn1(x)
        out = self.relu(out)
        if self.project:
            identity = self.downsample(out)
        elif self.downsample is not None:
            identity = self.downsample(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = out + identity
        return out


class PreActBottleneck(nn.Module):
    """BN-ReLU before each of the 1x1, 3x3, 1x1 convs (ResNet V2); a projection reads the pre-activated input.

    Args:
        plan: the block's `BlockPlan` from the spec (`preact` True).
    """

    expansion = 4

    def __init__(self, plan: BlockPlan):
        super().__init__()
        downsample = make_downsample(plan)
        self.bn1 = make_norm(plan.norms[0])
        self.conv1 = make_conv(plan.convs[0])
        self.bn2 = make_norm(plan.norms[1])
        self.conv2 = make_conv(plan.convs[1])
        self.bn3 = make_norm(plan.norms[2])
        self.conv3 = make_conv(plan.convs[2])
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.project = plan.downsample is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.bn1(x)
        out = self.relu(out)
        if self.project:
            identity = self.downsample(out)
        elif self.downsample is not None:
            identity = self.downsample(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        out = self.relu(out)
        out = self.conv3(out)
        out = out + identity
        return out


BLOCKS = {
    ("basic", False): BasicBlock,
    ("bottleneck", False): Bottleneck,
    ("basic", True): PreActBasicBlock,
    ("bottleneck", True): PreActBottleneck,
}


def make_downsample(plan: BlockPlan) -> nn.Sequential | None:
    """The identity path, named as torchvision (`downsample.0` conv, `.1` BN) and timm's avg-down
    (`.0` pool, `.1` conv, `.2` BN); a strided 1x1 max-pool alone where only the size changes."""
    if plan.downsample is None and plan.shortcut_pool is None:
        return None
    if plan.downsample is None:
        return nn.Sequential(make_pool(plan.shortcut_pool))
    conv, norm = plan.downsample
    layers = [make_conv(conv)] + ([make_norm(norm)] if norm is not None else [])
    # FRAMEWORK: naming — a torch Sequential names its children by index, so avg-down's conv is `.1` only with
    # something at `.0`: the pool, or timm's Identity where the block keeps the size; Keras names each layer.
    if conv.name.endswith(".1"):
        layers.insert(0, make_pool(plan.shortcut_pool) if plan.shortcut_pool is not None else nn.Identity())
    return nn.Sequential(*layers)


def make_stem_conv(plan: StemPlan) -> nn.Module:
    """`conv1`: one conv, or the deep stem's Sequential [conv, bn, relu, conv, bn, relu, conv] (timm's)."""
    if not plan.deep:
        return make_conv(plan.conv)
    layers: list[nn.Module] = []
    for conv, norm in zip(plan.convs[:-1], plan.norms[:-1]):
        layers += [make_conv(conv), make_norm(norm), nn.ReLU(inplace=True)]
    layers.append(make_conv(plan.convs[-1]))
    return nn.Sequential(*layers)


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
        head = spec.head_plan()
        self.conv1 = make_stem_conv(stem)
        if not spec.preact:  # a pre-activation network's first bn is its first block's bn1
            self.bn1 = make_norm(stem.norms[-1])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = make_pool(stem.pool) if stem.pool is not None else nn.Identity()
        for index, plans in enumerate(spec.stage_blocks()):
            # torchvision's `layer1` .. `layer4` attributes, each an nn.Sequential of blocks.
            blocks = [BLOCKS[plan.kind, plan.preact](plan) for plan in plans]
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
        if head.norm is not None:
            self.post_bn = make_norm(head.norm)
        self.avgpool = make_global_pool(head)
        self.fc = make_fc(head) if head.out_features else nn.Identity()
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
        """conv1 -> bn1 -> relu -> maxpool (bn1 and relu are Identity in a pre-activation network)."""
        out = self.conv1(x)
        if not self.spec.preact:
            out = self.bn1(out)
            out = self.relu(out)
        out = self.maxpool(out)
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's output map: the last stage, after the final BN-ReLU of a pre-activation network."""
        out = x
        if self.spec.preact:
            out = self.post_bn(out)
            out = self.relu(out)
        return out

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """(post_bn -> relu) -> global pool -> fc: the last stage's map to logits (or features)."""
        out = self.forward_features(x)
        if self.spec.pooling is None:
            return out
        out = self.avgpool(out)
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
        outputs[self.spec.output_name] = out
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[self.spec.output_name]
