"""`build()` and `resnet18()` .. `resnet152()`: the same constructors, built from the spec."""

from parity.spec import preset_builders
from resnet_keras.model import ResNet

_BUILDERS = preset_builders(ResNet, __name__)
build = _BUILDERS["build"]
resnet18 = _BUILDERS["resnet18"]
resnet34 = _BUILDERS["resnet34"]
resnet50 = _BUILDERS["resnet50"]
resnet101 = _BUILDERS["resnet101"]
resnet152 = _BUILDERS["resnet152"]
