"""Framework helper layers of resnet_torch (mirrors resnet_keras/layers.py): what torch lacks for the spec.

`SameConv2d` and `SameMaxPool2d` give TF's 'same' padding where a spec asks for it; `SameMaxPool2d` also gives
keras.applications V2's zero-filled stem pool.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from parity.spec import ConvPlan, PoolPlan

# FRAMEWORK: layout — torch images are NCHW; Keras images are NHWC.
CHANNEL_AXIS = 1


class SameConv2d(nn.Conv2d):
    """nn.Conv2d with TF's 'same' padding, the odd pixel at the bottom/right (any stride).

    # FRAMEWORK: padding — torch's padding='same' exists for stride 1 only and pads symmetrically;
    # TF's 'same' depends on the input size, so the pad is computed per call.
    """

    def __init__(self, *args, plan: ConvPlan, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self.plan.pads(x.shape[-2], x.shape[-1])
        out = F.pad(x, (left, right, top, bottom))
        out = super().forward(out)
        return out


class SameMaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d behind the plan's own padding: TF's 'same' (odd pixel bottom/right) or symmetric, filled with
    -inf (a padded cell never wins) or, with `fill="zero"`, with zeros as Keras' ZeroPadding2D does.

    # FRAMEWORK: max-pool padding — torch pads with -inf inside the pool; a zero pad wins wherever a window's
    # real cells are all negative, which happens when no ReLU precedes the pool (keras.applications V2's stem).
    """

    def __init__(self, plan: PoolPlan):
        super().__init__(kernel_size=plan.kernel, stride=plan.stride, padding=0)
        self.plan = plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self.plan.pads(x.shape[-2], x.shape[-1])
        fill = 0.0 if self.plan.fill == "zero" else float("-inf")
        out = F.pad(x, (left, right, top, bottom), value=fill)
        out = super().forward(out)
        return out
