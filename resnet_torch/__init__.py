"""ResNet-18/34/50/101/152 as PyTorch modules with torchvision's state_dict keys."""

from resnet_torch.builders import build, resnet18, resnet34, resnet50, resnet101, resnet152
from resnet_torch.model import BasicBlock, Bottleneck, ResNet

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "build",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
]
