"""Plans: one conv, norm, pool, block, stem or head of a ResNet, with the numbers a backend builds from.

Layouts are PyTorch's (conv weights OIHW); names are torchvision's `state_dict` keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STAGE_NAMES_HEAD = "logits"
STAGE_NAMES_FEATURES = "features"


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
    groups: int = 1
    rank: int = 2

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """OIHW for a 2-D conv, OIW for a 1-D one (`rank` 1: ECA's conv along the channels)."""
        return (self.out_channels, self.in_channels // self.groups) + (self.kernel,) * self.rank

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


POOL_KINDS = ("max", "avg")

POOL_FILLS = ("-inf", "zero")
"""What a max-pool's padded cells hold: '-inf' (torch's, never picked) or 'zero' (a ZeroPadding2D
in front, as keras.applications' V2 stem does before a pool whose input can be negative)."""


@dataclass(frozen=True)
class PoolPlan:
    """A pooling window.

    `kind` "max" pads with `fill`; "avg" with `same` is torch's `AvgPool2d(ceil_mode=True,
    count_include_pad=False)` and TF's 'same' average: the edge window averages only the real cells.
    """

    name: str
    kernel: int
    stride: int
    padding: int
    same: bool = False
    kind: str = "max"
    fill: str = "-inf"

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        return _window_out(h, self.kernel, self.stride, self.padding, self.same), _window_out(
            w, self.kernel, self.stride, self.padding, self.same
        )

    def pads(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) padding for an h x w input."""
        return _pads(h, w, self.kernel, self.stride, self.padding, self.same)


@dataclass(frozen=True)
class StemPlan:
    """conv -> norm -> relu for each conv (the last norm is `bn1`, None in a pre-activation network),
    then the max-pool (or none). One conv `conv1`, or the deep stem's three (`conv1.0`, `conv1.3`, `conv1.6`,
    with norms `conv1.1`, `conv1.4`: timm's Sequential indices, the ReLUs at 2 and 5)."""

    convs: tuple[ConvPlan, ...]
    norms: tuple[NormPlan | None, ...]
    pool: PoolPlan | None

    @property
    def conv(self) -> ConvPlan:
        """The first conv: the one that sees the image."""
        return self.convs[0]

    @property
    def deep(self) -> bool:
        return len(self.convs) > 1

    @property
    def inner(self) -> list[tuple[ConvPlan, NormPlan]]:
        """The deep stem's convs before the last, each with the norm that follows it (every one has one)."""
        return [(conv, norm) for conv, norm in zip(self.convs[:-1], self.norms[:-1]) if norm is not None]

    @property
    def last_norm(self) -> NormPlan | None:
        """`bn1`, after the last conv; None in a pre-activation network (its first block normalises)."""
        return self.norms[-1]

    def layers(self) -> list[ConvPlan | NormPlan]:
        """Layers with weights in forward (and torch registration) order."""
        return [p for pair in zip(self.convs, self.norms) for p in pair if p is not None]


@dataclass(frozen=True)
class AttnPlan:
    """Channel attention after a block's last norm, before the residual addition, as timm places it.

    `kind` names the module a backend builds (`resnet_*.layers.ATTENTION`); `convs` are its layers with weights,
    named under the block (timm's `se.fc1`, `se.fc2`).
    """

    name: str
    kind: str
    channels: int
    convs: tuple[ConvPlan, ...]


@dataclass(frozen=True)
class BlockPlan:
    """One residual block `layer{stage}.{index}`.

    Post-activation (`preact` False): `convs[i]` is followed by `norms[i]`; a ReLU follows every norm
    but the last (and the last too when `relu_before_add`), and one follows the residual addition.
    Pre-activation (ResNet V2): `norms[i]` and a ReLU come *before* `convs[i]`; nothing follows the
    addition, and a projecting shortcut reads the pre-activated input (after `norms[0]`).

    `downsample` is (conv, norm) on the identity path, (conv, None) without BatchNorm, or None;
    `shortcut_pool` runs first on that path: the avg-down pool (ResNet-D, then a stride-1 conv), or a
    strided 1x1 max-pool alone where only the size changes (keras.applications V2).
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
    preact: bool = False
    shortcut_pool: PoolPlan | None = None
    attn: AttnPlan | None = None

    def layers(self) -> list[ConvPlan | NormPlan]:
        """Layers with weights in forward (and torch registration) order: the main path, the attention, the
        shortcut last."""
        pairs = zip(self.norms, self.convs) if self.preact else zip(self.convs, self.norms)
        main: list[ConvPlan | NormPlan] = [p for pair in pairs for p in pair]
        attn = list(self.attn.convs) if self.attn is not None else []
        shortcut = [p for p in (self.downsample or ()) if p is not None]
        return main + attn + shortcut


POOLINGS = ("avg", "max", None)
"""The head's global pool: average (every library's classifier), max, or none (the feature map)."""


@dataclass(frozen=True)
class HeadPlan:
    """(norm -> relu) -> global pool -> fc: `norm` is the pre-activation network's final BN (`post_bn`),
    `pooling` None keeps the map (a backbone), `out_features` 0 means no fc (pooled features)."""

    name: str
    in_features: int
    out_features: int
    pooling: str | None = "avg"
    norm: NormPlan | None = None

    @property
    def output_name(self) -> str:
        """'logits' with an fc, 'features' without one."""
        return STAGE_NAMES_HEAD if self.out_features else STAGE_NAMES_FEATURES


@dataclass(frozen=True)
class LayerRow:
    """One row of the canonical layer table."""

    name: str
    kind: str  # "conv" | "bn" | "maxpool" | "avgpool" | "fc"
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
