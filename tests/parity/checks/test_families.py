"""Parity on every family: float64 port verdict, unit/layer localisation, fp32 verdict, ONNX four-way and
training steps, on narrow copies of each family (same topology and code paths, a fraction of the time)."""

from __future__ import annotations

import numpy as np
import pytest

from parity.backends import adapter, adapter_named
from parity.checks.check import CheckConfig, build_pair, check_arch, default_weights, random_input
from parity.checks.compare import compare
from parity.checks.localise import unit_names
from parity.checks.train_steps import compare_training, training_pair
from parity.core import tolerances
from parity.io.weights import copy_weights, random_weights, set_weights
from parity.spec import make_spec

NARROW = {"widths": (8, 16, 32, 64), "deep_stem_width": 8, "stem_width": 16, "num_classes": 10}


def narrow(arch: str, variant: str = "torchvision", **overrides):
    return make_spec(arch, variant, **{**NARROW, **overrides})


FAMILIES = {
    "resnet18d": narrow("resnet18d", layers=(1, 1, 1, 1)),
    "resnet50d": narrow("resnet50d", layers=(1, 2, 1, 1)),
    "resnext50_32x4d": narrow("resnext50_32x4d", layers=(1, 1, 1, 1), groups=4, width_per_group=16),
    "wide_resnet50_2": narrow("wide_resnet50_2", layers=(1, 1, 1, 1)),
    "resnet50v2": narrow("resnet50v2", layers=(2, 2, 2, 1)),  # stride on each stage's last block
    "preact-backbone": narrow("resnet18", "preact", num_classes=0, pooling=None),  # keras-hub's V2, no head
    "headless-max": narrow("resnet26", layers=(1, 1, 1, 1), num_classes=0, pooling="max"),
    "seresnet50": narrow("seresnet50", layers=(1, 2, 1, 1)),  # squeeze-excitation in every block
    "ecaresnet50d": narrow("ecaresnet50d", layers=(1, 1, 1, 1)),  # ECA's 1-D conv across the channels
    "resnet50t": narrow("resnet50t", layers=(1, 1, 1, 1)),  # the tiered deep stem
}
ODD = (35, 33)  # the odd pixel at every stride-2 layer, and the avg-down pool's edge window


def _ported(spec, seed=0):
    t, k = build_pair(spec)
    set_weights(t, default_weights(spec, seed, *ODD))
    copy_weights(t, k)
    return t, k


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_ports_pass_at_odd_sizes(name):
    spec = FAMILIES[name]
    t, k = _ported(spec)
    counts = spec.param_counts()
    for model in (t, k):  # each framework's own count equals the spec's
        assert adapter(model).count_params(model) == (counts["trainable"], counts["bn_running"])
    report = compare(t, k, random_input(spec, 2, *ODD, 0))
    assert report.passed, str(report)
    assert [s.stage for s in report.blocks] == unit_names(spec)  # every block, the stem and head alone
    assert max(s.max_rel for s in report.float64_stages + report.blocks) < tolerances.FP64
    assert report.stages[-1].stage == spec.output_name
    assert tuple(report.stages[-1].shape_a) == (2, *spec.stage_shapes(*ODD)[spec.output_name])


@pytest.mark.parametrize(
    "name, key, block, layer",
    [
        ("resnet50d", "conv1.3.weight", "stem", "conv1.3"),  # the deep stem's second conv
        ("resnet50d", "layer2.0.downsample.1.weight", "layer2.0", "layer2.0.downsample.1"),  # after the avg pool
        ("resnet50v2", "layer2.1.conv2.weight", "layer2.1", "layer2.1.conv2"),  # a pre-activation block
        ("resnet50v2", "layer3.0.downsample.0.weight", "layer3.0", "layer3.0.downsample.0"),  # reads bn1's output
        ("resnet50t", "conv1.0.weight", "stem", "conv1.0"),  # the tiered stem's narrow first conv
        ("seresnet50", "layer2.1.se.fc1.weight", "layer2.1", "layer2.1.se.fc1"),  # inside the SE module
    ],
)
def test_a_wrong_channel_is_named_inside_the_family(name, key, block, layer):
    spec = FAMILIES[name]
    t, k = _ported(spec)
    weights = adapter(k).get_weights(k)
    weights[key][1] *= 1.001
    set_weights(k, weights)
    report = compare(t, k, random_input(spec, 1, *ODD, 0))
    assert not report.port_passed
    assert (report.first_wrong_block, report.first_wrong_layer) == (block, layer)


# ResNet-D's ONNX files (the avg-down pool's ceil mode at an odd size) with ECA's 1-D conv run in CI as
# tests/parity/checks/test_export.py::test_onnxruntime_rows_of_a_bottleneck_resnet50d_with_eca; V2 (zero-padded stem
# pool, strided 1x1 max-pool shortcut) and SE (1x1 convs on a pooled map) run the same export code: the extended tier.
@pytest.mark.extended
@pytest.mark.parametrize("name", ["resnet50d", "resnet50v2", "seresnet50"])
def test_onnxruntime_rows(name):
    spec = FAMILIES[name]
    result = check_arch(spec, CheckConfig(height=ODD[0], width=ODD[1], runtimes=("onnxruntime",)))
    assert result.passed, result
    assert [r.source for r in result.runtimes if r.diff is not None] == ["torch", "keras"]


def test_grouped_conv_onnx_export_is_refused_on_tensorflow_in_one_line():
    refusal = adapter_named("keras").onnx_refusal(FAMILIES["resnext50_32x4d"])
    assert "grouped convs (groups=4)" in refusal and "--keras-backend torch" in refusal
    assert adapter_named("keras").onnx_refusal(FAMILIES["resnet50d"]) is None


def test_training_steps_through_the_attention_match_in_float64():
    for spec in (narrow("seresnet18", layers=(1, 1, 1, 1)), narrow("ecaresnet50d", layers=(1, 1, 1, 1), stem="tiered")):
        torch_model, keras_model = training_pair(spec, random_weights(spec, 0), "float64")
        report = compare_training(torch_model, keras_model, steps=2, batch=4, height=ODD[0], seed=0)
        assert report.passed, report.to_dict()
        moved = adapter(keras_model).get_weights(keras_model)
        attention = next(k for k in moved if ".se." in k and k.endswith("weight"))
        assert not np.allclose(moved[attention], random_weights(spec, 0)[attention]), attention  # it learned


def test_training_steps_match_in_float64():
    spec = narrow("resnet50v2", layers=(2, 1, 1, 1), groups=2, width_per_group=64, avg_down=True, stem="deep")
    torch_model, keras_model = training_pair(spec, random_weights(spec, 0), "float64")
    report = compare_training(torch_model, keras_model, steps=2, batch=4, height=ODD[0], seed=0)
    assert report.passed, report.to_dict()
    for diff in report.loss + report.grads + [report.weights, report.running]:
        assert diff.max_rel <= tolerances.TRAIN_STEP_FP64, diff
    moved = adapter(keras_model).get_weights(keras_model)["layer1.0.conv2.weight"]
    assert not np.allclose(moved, random_weights(spec, 0)["layer1.0.conv2.weight"])  # the grouped conv learned
