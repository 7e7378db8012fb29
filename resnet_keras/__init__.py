"""ResNet-18/34/50/101/152 as Keras 3 models whose layer names are torchvision's keys."""

from resnet_keras.builders import build, resnet18, resnet34, resnet50, resnet101, resnet152
from resnet_keras.model import BasicBlock, Bottleneck, ResNet

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
