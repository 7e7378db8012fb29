"""Plans: one conv, norm, pool, block, stem or head of a ResNet, with the numbers a backend builds from.

Layouts are PyTorch's (conv weights OIHW); names are torchvision's `state_dict` keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STAGE_NAMES_HEAD = "logits"


@dataclass(frozen=True)
class ConvPlan:
    """One convolution, in PyTorch terms (weight OIHW)."""

    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    bias: bool
    same: bool = False

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels, self.kernel, self.kernel)

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        return _window_out(h, self.kernel, self.stride, self.padding, self.same), _window_out(
            w, self.kernel, self.stride, self.padding, self.same
        )

    def pads(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) padding for an h x w input."""
        return _pads(h, w, self.kernel, self.stride, self.padding, self.same)


@dataclass(frozen=True)
class NormPlan:
    """One BatchNorm over `channels`; eps and momentum in PyTorch's convention."""

    name: str
    channels: int
    eps: float
    momentum: float
    zero_init: bool = False


@dataclass(frozen=True)
class PoolPlan:
    """A max-pool window (PyTorch pads it with -inf)."""

    name: str
    kernel: int
    stride: int
    padding: int
    same: bool = False

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        return _window_out(h, self.kernel, self.stride, self.padding, self.same), _window_out(
            w, self.kernel, self.stride, self.padding, self.same
        )

    def pads(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) padding for an h x w input."""
        return _pads(h, w, self.kernel, self.stride, self.padding, self.same)


@dataclass(frozen=True)
class StemPlan:
    """conv1 -> bn1 -> relu -> (maxpool)."""

    conv: ConvPlan
    norm: NormPlan
    pool: PoolPlan | None


@dataclass(frozen=True)
class BlockPlan:
    """One residual block `layer{stage}.{index}`.

    `convs[i]` is followed by `norms[i]`; a ReLU follows every norm but the last (and the last too
    when `relu_before_add`), and one follows the residual addition. `downsample` is (conv, norm) on
    the identity path, (conv, None) without BatchNorm, or None.
    """

    name: str
    kind: str
    stage: int
    index: int
    in_channels: int
    out_channels: int
    stride: int
    convs: tuple[ConvPlan, ...]
    norms: tuple[NormPlan, ...]
    downsample: tuple[ConvPlan, NormPlan | None] | None
    relu_before_add: bool = False


@dataclass(frozen=True)
class HeadPlan:
    """Global average pool -> fc."""

    name: str
    in_features: int
    out_features: int


@dataclass(frozen=True)
class LayerRow:
    """One row of the canonical layer table."""

    name: str
    kind: str  # "conv" | "bn" | "maxpool" | "fc"
    input_shape: tuple[int, ...]  # NCHW without N (C, H, W), or (features,)
    output_shape: tuple[int, ...]
    kernel: int | None
    stride: int | None
    padding: int | str | None  # "same" for TF-style padding
    params: int
    buffers: int
    macs: int


NORM_SUFFIXES = ("weight", "bias", "running_mean", "running_var")
"""BatchNorm keys in torchvision's order; `num_batches_tracked` is a counter, not a weight."""

NUM_BATCHES_TRACKED = "num_batches_tracked"


def _window_out(size: int, kernel: int, stride: int, padding: int, same: bool = False) -> int:
    if same:  # TF's 'same': ceil(size / stride), whatever the kernel
        return -(-size // stride)
    # PyTorch's floor rule; equals TF's 'valid' after explicit symmetric padding.
    return (size + 2 * padding - kernel) // stride + 1


def _pads(h: int, w: int, kernel: int, stride: int, padding: int, same: bool) -> tuple[int, int, int, int]:
    if not same:
        return padding, padding, padding, padding
    pads = []
    for size in (h, w):
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]  # the odd pixel goes bottom / right
    return pads[0], pads[1], pads[2], pads[3]


def _check_size(name: str, oh: int, ow: int, h: int, w: int) -> None:
    if oh < 1 or ow < 1:
        raise ValueError(f"input too small: {name} turns {h}x{w} into {oh}x{ow}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
