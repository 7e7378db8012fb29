"""`build()` and `resnet18()` .. `resnet152()`: torchvision's constructors, built from the spec.

Read side by side with `resnet_keras/builders.py`.
"""

from __future__ import annotations

from typing import Any

from parity.spec import make_spec
from resnet_torch.model import ResNet


def build(arch: str, num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """A preset architecture with spec overrides, as a torch.nn.Module.

    Args:
        arch: "resnet18" .. "resnet152" (`parity.spec.ARCHS`).
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field (stem="cifar", zero_init_residual=True, ...).
    """
    return ResNet(make_spec(arch, num_classes=num_classes, in_channels=in_channels, **overrides))


def resnet18(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-18 (basic blocks 2-2-2-2), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return build("resnet18", num_classes, in_channels, **overrides)


def resnet34(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-34 (basic blocks 3-4-6-3), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return build("resnet34", num_classes, in_channels, **overrides)


def resnet50(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-50 (bottleneck blocks 3-4-6-3), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return build("resnet50", num_classes, in_channels, **overrides)


def resnet101(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-101 (bottleneck blocks 3-4-23-3), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return build("resnet101", num_classes, in_channels, **overrides)


def resnet152(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-152 (bottleneck blocks 3-8-36-3), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return build("resnet152", num_classes, in_channels, **overrides)
