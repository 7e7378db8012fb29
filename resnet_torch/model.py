"""ResNet as a `torch.nn.Module`, built from a `parity.spec.ResNetSpec`.

Read side by side with `resnet_keras/model.py`: same classes, same method order, same local names.
Every intentional difference is tagged `# FRAMEWORK:`. The layers and the factories that make them from the
spec's plans live in `resnet_torch/layers.py`; `ResNet(spec, layers=...)` builds with other factories.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from parity.spec import BlockPlan, ResNetSpec, StemPlan
from resnet_torch.layers import CHANNEL_AXIS, LAYERS, Layers


class Block(nn.Module):
    """A post-activation residual block (ResNet v1, torchvision's BasicBlock and Bottleneck alike): each conv
    followed by its BatchNorm and a ReLU, the attention after the last norm, the addition, a ReLU.

    The convs are the plan's (two 3x3, or 1x1-3x3-1x1), so one class builds every depth and family.

    Args:
        plan: the block's `BlockPlan` from the spec.
        layers: the factories to build with (`resnet_torch.layers.LAYERS`).
    """

    def __init__(self, plan: BlockPlan, layers: Layers = LAYERS):
        super().__init__()
        # FRAMEWORK: init order — torchvision builds the shortcut before the block (its default init draws
        # first) and registers it last; Keras draws every initialiser at build time, in call order.
        downsample = make_downsample(plan, layers)
        self.depth = len(plan.convs)
        for index, (conv, norm) in enumerate(zip(plan.convs, plan.norms), start=1):
            setattr(self, f"conv{index}", layers.conv(conv))
            setattr(self, f"bn{index}", layers.norm(norm))
        self.relu = nn.ReLU(inplace=True)
        self.se = layers.attn(plan.attn) if plan.attn is not None else None
        self.downsample = downsample
        self.relu_before_add = plan.relu_before_add

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = x
        for index in range(1, self.depth + 1):
            out = getattr(self, f"conv{index}")(out)
            out = getattr(self, f"bn{index}")(out)
            if index < self.depth or self.relu_before_add:
                out = self.relu(out)
        if self.se is not None:
            out = self.se(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out = out + identity
        out = self.relu(out)
        return out


class PreActBlock(nn.Module):
    """A pre-activation residual block (ResNet V2): BN-ReLU before each conv, the attention after the last conv,
    the addition; a projecting shortcut reads the pre-activated input.

    Args:
        plan: the block's `BlockPlan` from the spec (`preact` True).
        layers: the factories to build with (`resnet_torch.layers.LAYERS`).
    """

    def __init__(self, plan: BlockPlan, layers: Layers = LAYERS):
        super().__init__()
        downsample = make_downsample(plan, layers)
        self.depth = len(plan.convs)
        for index, (conv, norm) in enumerate(zip(plan.convs, plan.norms), start=1):
            setattr(self, f"bn{index}", layers.norm(norm))
            setattr(self, f"conv{index}", layers.conv(conv))
        self.relu = nn.ReLU()
        self.se = layers.attn(plan.attn) if plan.attn is not None else None
        self.downsample = downsample
        self.project = plan.downsample is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.bn1(x)
        out = self.relu(out)
        if self.downsample is not None:
            # a projection reads the pre-activated input; V2's strided max-pool the block's own
            identity = self.downsample(out if self.project else x)
        out = self.conv1(out)
        for index in range(2, self.depth + 1):
            out = getattr(self, f"bn{index}")(out)
            out = self.relu(out)
            out = getattr(self, f"conv{index}")(out)
        if self.se is not None:
            out = self.se(out)
        out = out + identity
        return out


def make_downsample(plan: BlockPlan, layers: Layers = LAYERS) -> nn.Sequential | None:
    """The identity path, named as torchvision (`downsample.0` conv, `.1` BN) and timm's avg-down
    (`.0` pool, `.1` conv, `.2` BN); a strided 1x1 max-pool alone where only the size changes."""
    if plan.downsample is None:
        if plan.shortcut_pool is None:
            return None
        return nn.Sequential(layers.pool(plan.shortcut_pool))
    conv, norm = plan.downsample
    path = [layers.conv(conv)] + ([layers.norm(norm)] if norm is not None else [])
    # FRAMEWORK: naming — a torch Sequential names its children by index, so avg-down's conv is `.1` only with
    # something at `.0`: the pool, or timm's Identity where the block keeps the size; Keras names each layer.
    if conv.name.endswith(".1"):
        path.insert(0, layers.pool(plan.shortcut_pool) if plan.shortcut_pool is not None else nn.Identity())
    return nn.Sequential(*path)


def make_stem_conv(plan: StemPlan, layers: Layers = LAYERS) -> nn.Module:
    """`conv1`: one conv, or the deep stem's Sequential [conv, bn, relu, conv, bn, relu, conv] (timm's)."""
    if not plan.deep:
        return layers.conv(plan.conv)
    path: list[nn.Module] = []
    for conv, norm in plan.inner:
        path += [layers.conv(conv), layers.norm(norm), nn.ReLU(inplace=True)]
    path.append(layers.conv(plan.convs[-1]))
    return nn.Sequential(*path)


class ResNet(nn.Module):
    """A ResNet whose `state_dict()` is torchvision's, key for key.

    Args:
        spec: the architecture; see `parity.spec.make_spec`.
        layers: the factories to build with (`resnet_torch.layers.LAYERS`; another set builds a variant).
    """

    def __init__(self, spec: ResNetSpec, layers: Layers = LAYERS):
        super().__init__()
        if not isinstance(spec, ResNetSpec):
            raise TypeError(f"spec must be a ResNetSpec, got {type(spec).__name__}")
        self.spec = spec
        stem = spec.stem_plan()
        head = spec.head_plan()
        self.conv1 = make_stem_conv(stem, layers)
        if stem.last_norm is not None:  # a pre-activation network's first bn is its first block's bn1
            self.bn1 = layers.norm(stem.last_norm)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = layers.pool(stem.pool) if stem.pool is not None else nn.Identity()
        block = PreActBlock if spec.preact else Block
        for index, plans in enumerate(spec.stage_blocks()):
            # torchvision's `layer1` .. `layer4` attributes, each an nn.Sequential of blocks.
            blocks = [block(plan, layers) for plan in plans]
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
        if head.norm is not None:
            self.post_bn = layers.norm(head.norm)
        self.avgpool = layers.global_pool(head)
        self.fc = layers.fc(head) if head.out_features else nn.Identity()
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
