"""Framework-free description of a ResNet: the single source of truth.

Every number either backend needs (depths, widths, strides, paddings, BatchNorm epsilon and
momentum) lives here. `resnet_torch` and `resnet_keras` read a `ResNetSpec` and its plans
(`stem_plan()`, `block_plans()`, `head_plan()`); they never repeat a literal this package holds.

Names are torchvision's `state_dict` keys (`layer2.0.downsample.0.weight`), layouts are PyTorch's
(conv weights OIHW, dense weights out x in), and BatchNorm momentum is in PyTorch's convention
(`running = (1 - momentum) * running + momentum * batch`).

- `parity.spec.fields`, `parity.spec.planner`, `parity.spec.resnet`: `ResNetSpec` (its fields and validation, its
  plans, its tables and counts: one dataclass in three modules);
- `parity.spec.plans`: one conv / norm / pool / attention / block / stem / head, and the layer table's rows;
- `parity.spec.presets`: the five depths, the families (ResNet-C/D, ResNeXt, Wide, V2, other depths),
  the named variants, `make_spec`.

This package imports only the standard library.
"""

from parity.spec.fields import (
    BLOCK_EXPANSION,
    LABELS,
    PADDINGS,
    SHORTCUTS,
    SIZES,
    STEMS,
    STRIDE_AT,
    STRIDE_ON,
)
from parity.spec.plans import (
    NORM_SUFFIXES,
    NUM_BATCHES_TRACKED,
    POOL_FILLS,
    POOL_KINDS,
    POOLINGS,
    STAGE_NAMES_FEATURES,
    STAGE_NAMES_HEAD,
    AttnPlan,
    BlockPlan,
    ConvPlan,
    HeadPlan,
    LayerRow,
    NormPlan,
    PoolPlan,
    StemPlan,
)
from parity.spec.presets import (
    ARCHS,
    DEFAULT_INPUT_SIZE,
    FAMILIES,
    OPTIMIZERS,
    PRESETS,
    VARIANT_INPUT_SIZE,
    VARIANTS,
    input_size,
    layout_name,
    make_spec,
    parse_archs,
)
from parity.spec.resnet import ResNetSpec

__all__ = [
    "ARCHS",
    "BLOCK_EXPANSION",
    "DEFAULT_INPUT_SIZE",
    "FAMILIES",
    "LABELS",
    "NORM_SUFFIXES",
    "NUM_BATCHES_TRACKED",
    "OPTIMIZERS",
    "POOL_KINDS",
    "PADDINGS",
    "POOLINGS",
    "POOL_FILLS",
    "PRESETS",
    "SHORTCUTS",
    "SIZES",
    "STAGE_NAMES_FEATURES",
    "STAGE_NAMES_HEAD",
    "STRIDE_AT",
    "STEMS",
    "STRIDE_ON",
    "VARIANTS",
    "VARIANT_INPUT_SIZE",
    "AttnPlan",
    "BlockPlan",
    "ConvPlan",
    "HeadPlan",
    "LayerRow",
    "NormPlan",
    "PoolPlan",
    "ResNetSpec",
    "StemPlan",
    "input_size",
    "layout_name",
    "make_spec",
    "parse_archs",
]
