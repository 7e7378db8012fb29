"""parity.spec: the numbers every backend is built from."""

from __future__ import annotations

import json

import pytest

from parity.spec import ARCHS, ResNetSpec, make_spec, parse_archs
from tests.conftest import TORCHVISION_TRAINABLE, run_python


@pytest.mark.parametrize("arch", list(ARCHS))
def test_trainable_params_match_torchvision(arch):
    assert make_spec(arch).param_counts()["trainable"] == TORCHVISION_TRAINABLE[arch]


def test_bn_running_stats_counted_separately():
    # resnet18: 20 BNs; running_mean + running_var = 2 * channels each.
    spec = make_spec("resnet18")
    bn_channels = sum(r.output_shape[0] for r in spec.layer_table(64) if r.kind == "bn")
    assert spec.param_counts()["bn_running"] == 2 * bn_channels == 9_600


def test_resnet50_macs_at_224():
    # torchvision's model card: 4.09 GFLOPS (multiply-accumulates) for ResNet-50 at 224.
    assert make_spec("resnet50").macs(224) == pytest.approx(4.09e9, rel=2e-3)


def test_macs_scale_with_input_area():
    spec = make_spec("resnet18")
    conv_macs_448 = spec.macs(448) - 512 * 1000
    conv_macs_224 = spec.macs(224) - 512 * 1000
    assert conv_macs_448 == 4 * conv_macs_224


def test_torchvision_layout_v15_stride_on_3x3():
    block = next(p for p in make_spec("resnet50").block_plans() if p.name == "layer2.0")
    assert [c.stride for c in block.convs] == [1, 2, 1]
    assert block.downsample[0].stride == 2
    v1 = next(p for p in make_spec("resnet50", "v1").block_plans() if p.name == "layer2.0")
    assert [c.stride for c in v1.convs] == [2, 1, 1]


def test_canonical_keys_are_torchvision_names():
    shapes = make_spec("resnet50").canonical_shapes()
    assert shapes["conv1.weight"] == (64, 3, 7, 7)
    assert shapes["bn1.running_var"] == (64,)
    assert shapes["layer2.0.downsample.0.weight"] == (512, 256, 1, 1)
    assert shapes["layer4.2.bn3.weight"] == (2048,)
    assert shapes["fc.weight"] == (1000, 2048)
    assert "layer1.0.downsample.0.weight" in shapes  # 64 -> 256 channels needs a projection
    assert "layer1.0.downsample.0.weight" not in make_spec("resnet18").canonical_shapes()
    assert len(shapes) == 267


def test_layer_table_rows():
    rows = {r.name: r for r in make_spec("resnet18").layer_table(224)}
    assert rows["conv1"].output_shape == (64, 112, 112)
    assert (rows["conv1"].kernel, rows["conv1"].stride, rows["conv1"].padding) == (7, 2, 3)
    assert rows["maxpool"].output_shape == (64, 56, 56)
    assert rows["layer4.1.bn2"].output_shape == (512, 7, 7)
    assert rows["fc"].params == 512 * 1000 + 1000


def test_stage_shapes_odd_non_square():
    shapes = make_spec("resnet50").stage_shapes(97, 131)
    assert shapes == {
        "stem": (64, 25, 33),
        "layer1": (256, 25, 33),
        "layer2": (512, 13, 17),
        "layer3": (1024, 7, 9),
        "layer4": (2048, 4, 5),
        "logits": (1000,),
    }


def test_cifar_stem():
    spec = make_spec("resnet18", stem="cifar", num_classes=10)
    assert spec.stage_shapes(32)["stem"] == (64, 32, 32)
    assert spec.stage_shapes(32)["layer4"] == (512, 4, 4)
    assert spec.canonical_shapes()["conv1.weight"] == (64, 3, 3, 3)


def test_dict_round_trip_through_json():
    spec = make_spec("resnet101", "keras_applications", num_classes=7, in_channels=1)
    assert ResNetSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": -3}, "num_classes must be an int >= 0"),
        ({"num_classes": 10, "pooling": None}, "pass num_classes=0"),
        ({"groups": 32}, "bottleneck blocks only"),
        (
            {"block": "bottleneck", "width_per_group": 16, "widths": (2, 4, 8, 16)},
            "stage width 2 with width_per_group=16",
        ),
        ({"preact": True}, "no place for shortcut_norm=True"),
        ({"stride_at": "middle"}, "stride_at must be one of"),
        ({"in_channels": 0}, "in_channels must be a positive int"),
        ({"layers": (2, 2, 2)}, "widths has 4 entries but layers has 3"),
        ({"strides": (1, 2, 2)}, "strides has 3 entries but layers has 4"),
        ({"bn_momentum": 1.5}, "bn_momentum must be in (0, 1]"),
        ({"stem": "tiny"}, "stem must be one of"),
    ],
)
def test_bad_fields_name_the_problem(kwargs, message):
    with pytest.raises(ValueError) as info:
        make_spec("resnet18", **kwargs)
    assert message in str(info.value)


def test_unknown_arch_variant_and_field():
    with pytest.raises(ValueError, match="unknown arch 'resnet19'"):
        make_spec("resnet19")
    with pytest.raises(ValueError, match="unknown variant 'v2'"):
        make_spec("resnet18", "v2")
    with pytest.raises(TypeError, match="unknown spec field.*depth"):
        make_spec("resnet18", depth=3)
    with pytest.raises(ValueError, match="unknown arch 'resnet5'"):
        parse_archs("resnet18,resnet5")
    assert parse_archs("all") == list(ARCHS)


def test_bad_input_size():
    with pytest.raises(ValueError, match="input height must be a positive int, got 0"):
        make_spec("resnet18").layer_table(0)
    assert make_spec("resnet18").stage_shapes(1)["layer4"] == (512, 1, 1)


def test_spec_imports_no_framework():
    result = run_python(
        "import sys, parity, parity.spec\n"
        "bad = [m for m in ('torch', 'tensorflow', 'keras', 'jax') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "override, field, allowed",
    [
        ({"padding": "valid"}, "padding", "('symmetric', 'same')"),
        ({"pool_padding": -1}, "pool_padding", "0 or 1"),
        ({"shortcut": "sometimes"}, "shortcut", "('projection', 'always', 'subsample', 'first')"),
        ({"stem_padding": -2}, "stem_padding", "int >= 0"),
        ({"stem_bias": "yes"}, "stem_bias", "None (follow conv_bias), True or False"),
        ({"shortcut_bias": 1}, "shortcut_bias", "None (follow conv_bias), True or False"),
        ({"stem_bn_eps": 0}, "stem_bn_eps", "> 0"),
        ({"relu_before_add": 1}, "relu_before_add", "True or False"),
    ],
)
def test_bad_overrides_name_the_field_and_the_allowed_values(override, field, allowed):
    with pytest.raises(ValueError) as info:
        make_spec("resnet18", **override)
    assert str(info.value).startswith(field) and allowed in str(info.value)


def test_new_fields_default_to_torchvision():
    spec = make_spec("resnet50")
    assert spec == make_spec(
        "resnet50",
        padding="symmetric",
        stem_padding=None,
        pool_padding=1,
        stem_bias=None,
        shortcut_bias=None,
        shortcut="projection",
        shortcut_norm=True,
        stem_bn_eps=None,
        relu_before_add=False,
    )
    assert all(not c.same for plan in spec.block_plans() for c in plan.convs)


def test_shortcut_without_norm_is_just_downsample_0():
    keys = make_spec("resnet18", shortcut="always", shortcut_norm=False).canonical_shapes()
    assert "layer1.0.downsample.0.weight" in keys and "layer1.0.downsample.1.weight" not in keys
    assert not any(k.startswith("layer1.0.downsample.1") for k in keys)


def test_same_padding_shapes_are_ceil_of_size_over_stride():
    spec = make_spec("resnet18", padding="same")
    assert spec.stage_shapes(97, 131) == {
        "stem": (64, 25, 33),
        "layer1": (64, 25, 33),
        "layer2": (128, 13, 17),
        "layer3": (256, 7, 9),
        "layer4": (512, 4, 5),
        "logits": (1000,),
    }
    assert spec.stem_plan().conv.pads(224, 97) == (2, 3, 3, 3)  # the odd pixel at the bottom/right


def test_counts_in_both_conventions():
    counts = make_spec("resnet50").param_counts()
    assert counts["keras_total"] == 25_557_032 + 53_120 and counts["keras_non_trainable"] == 53_120
    assert counts["torch_parameters"] == 25_557_032 and counts["torch_buffers"] == 53_120 + 53  # 53 BatchNorms
