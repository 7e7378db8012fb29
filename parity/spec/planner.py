"""`SpecPlans`: the plans a backend builds a ResNet from (stem, blocks, head), derived from the spec's fields."""

from __future__ import annotations

from collections.abc import Iterator

from parity.spec.fields import SpecFields
from parity.spec.plans import AttnPlan, BlockPlan, ConvPlan, HeadPlan, NormPlan, PoolPlan, StemPlan


class SpecPlans(SpecFields):
    """The fields of `SpecFields` and the plans that follow from them (see `parity.spec.resnet.ResNetSpec`)."""

    @property
    def output_name(self) -> str:
        """The last stage output's name: 'logits' with an fc, 'features' without (num_classes=0)."""
        return self.head_plan().output_name

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Names of the outputs compared stage by stage: stem, layer1.., logits (or features)."""
        return ("stem",) + tuple(f"layer{i + 1}" for i in range(len(self.layers))) + (self.output_name,)

    @property
    def depth(self) -> int:
        """Layers with weights on the main path: stem convs, each block's convs and the fc (18 for resnet18,
        50 for resnet50, 52 for resnet50d)."""
        convs_per_block = 2 if self.block == "basic" else 3
        return len(self.stem_plan().convs) + convs_per_block * sum(self.layers) + (1 if self.num_classes else 0)

    # -- plans the backends build from --------------------------------------------------------------

    def _conv(
        self,
        name: str,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        bias: bool | None = None,
        padding: int | None = None,
        groups: int = 1,
    ) -> ConvPlan:
        # Symmetric kernel // 2 for odd kernels unless given; a 1x1 conv never pads.
        padding = kernel // 2 if padding is None else padding
        bias = self.conv_bias if bias is None else bias
        return ConvPlan(name, cin, cout, kernel, stride, padding, bias, self.padding == "same", groups)

    def _norm(self, name: str, channels: int, zero_init: bool = False, eps: float | None = None) -> NormPlan:
        eps = self.bn_eps if eps is None else eps
        return NormPlan(name, channels, float(eps), float(self.bn_momentum), zero_init)

    def stem_plan(self) -> StemPlan:
        same = self.padding == "same"
        last_norm = None if self.preact else self._norm("bn1", self.stem_width, eps=self.stem_bn_eps)
        pool = PoolPlan("maxpool", 3, 2, self.pool_padding, same, "max", self.pool_fill)
        if self.stem == "imagenet":
            conv = self._conv("conv1", self.in_channels, self.stem_width, 7, 2, self.stem_bias, self.stem_padding)
            return StemPlan((conv,), (last_norm,), pool)
        if self.stem == "cifar":
            conv = self._conv("conv1", self.in_channels, self.stem_width, 3, 1, self.stem_bias, self.stem_padding)
            return StemPlan((conv,), (last_norm,), None)
        # Deep stem: timm's Sequential conv1 = [conv, bn, relu, conv, bn, relu, conv]; its indices are the names.
        mid = self.deep_stem_width
        first = 3 * (mid // 4) if self.stem == "tiered" else mid
        convs = (
            self._conv("conv1.0", self.in_channels, first, 3, 2, self.stem_bias, self.stem_padding),
            self._conv("conv1.3", first, mid, 3, 1, self.stem_bias),
            self._conv("conv1.6", mid, self.stem_width, 3, 1, self.stem_bias),
        )
        norms = (self._norm("conv1.1", first), self._norm("conv1.4", mid), last_norm)
        return StemPlan(convs, norms, pool)

    def _attn(self, channels: int) -> AttnPlan | None:
        """The block's channel attention (timm's names: the module `se`, its convs `fc1`, `fc2` or `conv`)."""
        if self.attn == "se":
            inner = self.se_channels(channels)
            squeeze = ConvPlan("se.fc1", channels, inner, 1, 1, 0, True)
            excite = ConvPlan("se.fc2", inner, channels, 1, 1, 0, True)
            return AttnPlan("se", "se", channels, (squeeze, excite))
        if self.attn == "eca":
            kernel = self.eca_kernel(channels)
            return AttnPlan(
                "se", "eca", channels, (ConvPlan("se.conv", 1, 1, kernel, 1, (kernel - 1) // 2, False, rank=1),)
            )
        return None

    def _block_stride(self, index: int, count: int, stage_stride: int) -> int:
        carrier = 0 if self.stride_at == "first" else count - 1
        return stage_stride if index == carrier else 1

    def _shortcut(
        self, cin: int, cout: int, stride: int, first: bool
    ) -> tuple[PoolPlan | None, tuple[ConvPlan, NormPlan | None] | None]:
        """(pool, (conv, norm)) of the identity path; both None for a plain identity."""
        channels_change = cin != cout
        if self.shortcut == "subsample" and not channels_change:
            pool = PoolPlan("downsample.0", 1, stride, 0, kind="max") if stride != 1 else None
            return pool, None
        forced = self.shortcut == "always" or (self.shortcut == "first" and first)
        if not (stride != 1 or channels_change or forced):
            return None, None
        norm_name = "downsample.1"
        if self.avg_down:  # timm's downsample_avg: [pool (Identity at stride 1), conv, norm]
            pool = PoolPlan("downsample.0", 2, stride, 0, same=True, kind="avg") if stride != 1 else None
            conv = self._conv("downsample.1", cin, cout, 1, 1, self.shortcut_bias)
            norm_name = "downsample.2"
        else:
            pool = None
            conv = self._conv("downsample.0", cin, cout, 1, stride, self.shortcut_bias)
        norm = self._norm(norm_name, cout) if self.shortcut_norm else None
        return pool, (conv, norm)

    def block_plans(self) -> Iterator[BlockPlan]:
        cin = self.stem_width
        zero_last = self.zero_init_residual
        for s, (count, width, stage_stride) in enumerate(zip(self.layers, self.widths, self.strides)):
            cout = width * self.expansion
            for b in range(count):
                name = f"layer{s + 1}.{b}"
                stride = self._block_stride(b, count, stage_stride)
                last_bias = self.residual_bias
                convs: tuple[ConvPlan, ...]
                if self.block == "basic":
                    convs = (
                        self._conv("conv1", cin, width, 3, stride),
                        self._conv("conv2", width, width, 3, 1, last_bias),
                    )
                else:
                    inner = self.inner_width(width)
                    s1, s3 = (1, stride) if self.stride_on == "v1.5" else (stride, 1)
                    convs = (
                        self._conv("conv1", cin, inner, 1, s1),
                        self._conv("conv2", inner, inner, 3, s3, groups=self.groups),
                        self._conv("conv3", inner, cout, 1, 1, last_bias),
                    )
                if self.preact:  # bn{i} normalises conv{i}'s input
                    norms = tuple(self._norm(f"bn{i + 1}", c.in_channels) for i, c in enumerate(convs))
                else:
                    norms = tuple(
                        self._norm(f"bn{i + 1}", c.out_channels, zero_last and i == len(convs) - 1)
                        for i, c in enumerate(convs)
                    )
                pool, downsample = self._shortcut(cin, cout, stride, b == 0)
                yield BlockPlan(
                    name,
                    self.block,
                    s + 1,
                    b,
                    cin,
                    cout,
                    stride,
                    convs,
                    norms,
                    downsample,
                    self.relu_before_add,
                    self.preact,
                    pool,
                    self._attn(cout),
                )
                cin = cout

    def stage_blocks(self) -> list[list[BlockPlan]]:
        """Blocks grouped by stage: `stage_blocks()[0]` is layer1."""
        stages: list[list[BlockPlan]] = [[] for _ in self.layers]
        for plan in self.block_plans():
            stages[plan.stage - 1].append(plan)
        return stages

    def head_plan(self) -> HeadPlan:
        norm = self._norm("post_bn", self.feature_channels) if self.preact else None
        return HeadPlan("fc", self.feature_channels, self.num_classes, self.pooling, norm)
