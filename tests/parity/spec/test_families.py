"""parity.spec: the families other libraries ship (ResNet-C/D, ResNeXt, Wide, V2, headless, other depths)."""

from __future__ import annotations

import math

import pytest

from parity.spec import FAMILIES, PRESETS, make_spec

# Trainable parameters at 1000 classes, as each library counts them (issue #20): timm's `sum(p.numel())`,
# torchvision's, and keras.applications' `count_params()` (which includes the BN moving statistics).
TIMM_TRAINABLE = {
    "resnet18d": 11_708_744,
    "resnet34d": 21_816_904,
    "resnet50d": 25_576_264,
    "resnet101d": 44_568_392,
    "resnet152d": 60_212_040,
    "resnet26": 15_995_176,
    "resnet200": 64_673_832,
    # timm 1.0.31's attention and tiered-stem ResNets (issue #26)
    "seresnet18": 11_779_624,
    "seresnet50": 28_088_024,
    "seresnext50_32x4d": 27_559_896,
    "ecaresnet50d": 25_576_350,
    "resnet26t": 16_011_872,
    "resnet50t": 25_573_728,
}
TORCHVISION_TRAINABLE = {
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "resnext101_64x4d": 83_455_272,
    "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
}
KERAS_APPLICATIONS_COUNT = {"resnet50v2": 25_613_800, "resnet101v2": 44_675_560, "resnet152v2": 60_380_648}


@pytest.mark.parametrize("arch", sorted({**TIMM_TRAINABLE, **TORCHVISION_TRAINABLE}))
def test_trainable_params_match_the_library(arch):
    expected = {**TIMM_TRAINABLE, **TORCHVISION_TRAINABLE}[arch]
    assert make_spec(arch).param_counts()["trainable"] == expected


@pytest.mark.parametrize("arch", sorted(KERAS_APPLICATIONS_COUNT))
def test_v2_counts_match_keras_applications(arch):
    assert make_spec(arch).param_counts()["keras_total"] == KERAS_APPLICATIONS_COUNT[arch]


def test_headless_count_matches_keras_applications_include_top_false():
    spec = make_spec("resnet50", "keras_applications", num_classes=0, pooling="avg")
    assert spec.param_counts()["keras_total"] == 23_587_712
    assert spec.output_name == "features" and spec.stage_shapes(224)["features"] == (2048,)
    backbone = make_spec("resnet50", num_classes=0, pooling=None)
    assert backbone.stage_shapes(224)["features"] == (2048, 7, 7)
    assert "fc.weight" not in backbone.canonical_shapes()


def test_deep_stem_and_avg_down_use_timms_names():
    shapes = make_spec("resnet50d").canonical_shapes()
    assert shapes["conv1.0.weight"] == (32, 3, 3, 3)
    assert shapes["conv1.1.running_var"] == (32,)
    assert shapes["conv1.6.weight"] == (64, 32, 3, 3)
    assert shapes["layer2.0.downsample.1.weight"] == (512, 256, 1, 1)  # index 0 is the pool
    assert shapes["layer2.0.downsample.2.weight"] == (512,)
    block = next(p for p in make_spec("resnet50d").block_plans() if p.name == "layer2.0")
    assert (block.shortcut_pool.kind, block.shortcut_pool.kernel, block.shortcut_pool.stride) == ("avg", 2, 2)
    assert block.downsample[0].stride == 1
    # Stage 1 keeps the size: no pool (timm's Identity), the conv still named downsample.1.
    first = next(make_spec("resnet50d").block_plans())
    assert first.shortcut_pool is None and first.downsample[0].name == "downsample.1"
    assert "conv1.weight" not in make_spec("resnet50c").canonical_shapes()
    assert "layer2.0.downsample.0.weight" in make_spec("resnet50c").canonical_shapes()  # C: deep stem only


def test_resnext_and_wide_widths_follow_torchvision():
    block = next(p for p in make_spec("resnext50_32x4d").block_plans() if p.name == "layer1.0")
    assert (block.convs[1].in_channels, block.convs[1].groups, block.convs[1].weight_shape) == (128, 32, (128, 4, 3, 3))
    wide = next(make_spec("wide_resnet50_2").block_plans())
    assert wide.convs[0].out_channels == 128 and wide.out_channels == 256
    # A grouped conv does in_channels / groups of the work.
    assert make_spec("resnext50_32x4d").macs(224) == pytest.approx(4.27e9, rel=1e-2)


def test_keras_applications_v2_layout():
    spec = make_spec("resnet50v2")
    blocks = {p.name: p for p in spec.block_plans()}
    # The stride on each stage's last block; its identity a strided 1x1 max-pool, no conv.
    last = blocks["layer1.2"]
    assert last.stride == 2 and last.downsample is None
    assert (last.shortcut_pool.kind, last.shortcut_pool.kernel, last.shortcut_pool.stride) == ("max", 1, 2)
    assert blocks["layer1.0"].stride == 1 and blocks["layer1.0"].downsample[0].bias  # biased projection
    assert blocks["layer4.2"].stride == 1  # the last stage does not stride
    assert [n.channels for n in blocks["layer2.0"].norms] == [256, 128, 128]  # BN before each conv
    assert spec.head_plan().norm.name == "post_bn" and spec.stem_plan().norms == (None,)
    assert spec.stage_shapes(224)["layer1"] == (256, 28, 28) and spec.total_stride == 32


def test_every_family_validates_and_counts_consistently():
    for arch in FAMILIES:
        spec = make_spec(arch)
        counts = spec.param_counts()
        assert counts["trainable"] == sum(
            math.prod(shape)
            for key, shape in spec.canonical_shapes().items()
            if not key.endswith(("running_mean", "running_var"))
        ), arch
    assert set(FAMILIES) < set(PRESETS)


def test_attention_and_the_tiered_stem_follow_timms_rules():
    se = make_spec("seresnet50").canonical_shapes()
    assert se["layer1.0.se.fc1.weight"] == (16, 256, 1, 1) and se["layer1.0.se.fc1.bias"] == (16,)
    assert se["layer4.0.se.fc2.weight"] == (2048, 128, 1, 1)
    assert make_spec("seresnet18").canonical_shapes()["layer1.0.se.fc1.weight"] == (8, 64, 1, 1)  # at least 8
    eca = make_spec("ecaresnet50d").canonical_shapes()
    assert [eca[f"layer{s}.0.se.conv.weight"] for s in (1, 2, 3, 4)] == [(1, 1, 5)] * 3 + [(1, 1, 7)]
    tiered = make_spec("resnet26t").stem_plan()
    assert [c.out_channels for c in tiered.convs] == [24, 32, 64]
    keys = list(make_spec("seresnet18").canonical_shapes())
    assert keys.index("layer2.0.se.fc2.bias") < keys.index("layer2.0.downsample.0.weight")  # timm's order
    with pytest.raises(ValueError, match="attn must be None or one of"):
        make_spec("resnet18", attn="cbam")
