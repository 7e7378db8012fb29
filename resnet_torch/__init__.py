"""ResNet-18/34/50/101/152 and the families (ResNeXt, Wide, ResNet-D, V2) as PyTorch modules,
with torchvision's state_dict keys (timm's for the deep stem and avg-down)."""

from resnet_torch.builders import (
    create_model,
    list_models,
    resnet18,
    resnet34,
    resnet50,
    resnet50d,
    resnet50v2,
    resnet101,
    resnet152,
    resnext50_32x4d,
    resnext101_32x8d,
    resnext101_64x4d,
    wide_resnet50_2,
    wide_resnet101_2,
)
from resnet_torch.model import Block, PreActBlock, ResNet

__all__ = [
    "Block",
    "PreActBlock",
    "ResNet",
    "create_model",
    "list_models",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50d",
    "resnet50v2",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
]
