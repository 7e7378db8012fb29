"""resnet-parity: one ResNet spec, two backends, and the checks that prove they agree.

`import parity` imports no framework; functions that need one import it when called.
"""

from parity.spec import ARCHS, VARIANTS, ResNetSpec, make_spec

__all__ = ["ARCHS", "VARIANTS", "ResNetSpec", "make_spec"]
__version__ = "0.1.0"
