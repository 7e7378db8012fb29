"""`build()` and `resnet18()` .. `resnet152()`: torchvision's constructors, built from the spec."""

from parity.spec import preset_builders
from resnet_torch.model import ResNet

_BUILDERS = preset_builders(ResNet, __name__)
build = _BUILDERS["build"]
resnet18 = _BUILDERS["resnet18"]
resnet34 = _BUILDERS["resnet34"]
resnet50 = _BUILDERS["resnet50"]
resnet101 = _BUILDERS["resnet101"]
resnet152 = _BUILDERS["resnet152"]


def load_model(path, **spec):
    """A resnet_torch model from any checkpoint file (.pth, .safetensors, .npz, .weights.h5, .keras).

    Args:
        path: the file; its architecture is read from it unless given.
        **spec: arch=, variant=, num_classes=, in_channels= (see `parity.checkpoints.load_model`).
    """
    from parity.checkpoints import load_model as load

    return load(path, "torch", **spec)
