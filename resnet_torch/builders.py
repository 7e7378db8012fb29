"""`create_model()`, `list_models()`, `resnet18()` .. `resnet152()` and the families' builders: torchvision's constructors, built from the spec.

Read side by side with `resnet_keras/builders.py`.
"""

from __future__ import annotations

from typing import Any

from parity.spec import PRESETS, make_spec
from resnet_torch.model import ResNet


def create_model(name: str, num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """Any preset by name, with spec overrides, as a torch.nn.Module (timm's `create_model`).

    Args:
        name: a preset of `list_models()`: "resnet18" .. "resnet152" or a family ("resnet50d", "resnext50_32x4d", ...).
        num_classes: outputs of the fc layer (0: none, the pooled features).
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field (stem="cifar", zero_init_residual=True, ...).
    """
    return ResNet(make_spec(name, num_classes=num_classes, in_channels=in_channels, **overrides))


def list_models() -> list[str]:
    """Every preset `create_model` builds, in `parity.spec.PRESETS` order (timm's `list_models`)."""
    return list(PRESETS)


def resnet18(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-18 (basic blocks 2-2-2-2), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("resnet18", num_classes, in_channels, **overrides)


def resnet34(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-34 (basic blocks 3-4-6-3), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("resnet34", num_classes, in_channels, **overrides)


def resnet50(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-50 (bottleneck blocks 3-4-6-3), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("resnet50", num_classes, in_channels, **overrides)


def resnet101(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-101 (bottleneck blocks 3-4-23-3), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("resnet101", num_classes, in_channels, **overrides)


def resnet152(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-152 (bottleneck blocks 3-8-36-3), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer.
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("resnet152", num_classes, in_channels, **overrides)


def resnext50_32x4d(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNeXt-50 32x4d (bottleneck 3-4-6-3, 32 groups of 4 channels in layer1's 3x3), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer (0: none, the pooled features).
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("resnext50_32x4d", num_classes, in_channels, **overrides)


def resnext101_32x8d(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNeXt-101 32x8d (bottleneck 3-4-23-3, 32 groups of 8), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer (0: none, the pooled features).
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("resnext101_32x8d", num_classes, in_channels, **overrides)


def resnext101_64x4d(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNeXt-101 64x4d (bottleneck 3-4-23-3, 64 groups of 4), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer (0: none, the pooled features).
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("resnext101_64x4d", num_classes, in_channels, **overrides)


def wide_resnet50_2(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """Wide ResNet-50-2 (bottleneck 3-4-6-3, inner widths doubled), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer (0: none, the pooled features).
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("wide_resnet50_2", num_classes, in_channels, **overrides)


def wide_resnet101_2(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """Wide ResNet-101-2 (bottleneck 3-4-23-3, inner widths doubled), as torchvision builds it.

    Args:
        num_classes: outputs of the fc layer (0: none, the pooled features).
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("wide_resnet101_2", num_classes, in_channels, **overrides)


def resnet50d(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-50-D (deep 3x3 stem, avg-down shortcut; He et al. 2019), as timm builds it.

    Args:
        num_classes: outputs of the fc layer (0: none, the pooled features).
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("resnet50d", num_classes, in_channels, **overrides)


def resnet50v2(num_classes: int = 1000, in_channels: int = 3, **overrides: Any) -> ResNet:
    """ResNet-50 V2 (pre-activation, stride in each stage's last block), as keras.applications builds it.

    Args:
        num_classes: outputs of the fc layer (0: none, the pooled features).
        in_channels: channels of the input image.
        **overrides: `variant=` or any `ResNetSpec` field.
    """
    return create_model("resnet50v2", num_classes, in_channels, **overrides)
