"""parity.checks.compare: per-stage figures, NaN/inf handling, and that real porting mistakes are caught."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import resnet_torch
from parity.backends import adapter_named
from parity.checks.check import build_pair, random_input
from parity.checks.compare import compare, precision
from parity.checks.diff import StageDiff
from parity.core import tolerances
from parity.io.weights import copy_weights, random_weights, set_weights
from parity.spec import make_spec


def test_stage_diff_figures():
    a = np.array([1.0, -4.0, 2.0])
    b = np.array([1.0, -4.0 + 2e-6, 2.0])
    d = StageDiff.measure("x", a, b, 1e-6)
    assert d.max_abs == pytest.approx(2e-6)
    assert d.ref_max == 4.0
    assert d.max_rel == pytest.approx(5e-7)
    assert d.passed
    assert not StageDiff.measure("x", a, b, 1e-7).passed


def test_a_value_that_is_not_finite_never_passes_matched_or_not():
    a = np.array([np.nan, 1.0, np.inf, -np.inf])
    matched = StageDiff.measure("x", a, a.copy(), 1e-6)
    assert not matched.passed and not matched.finite and matched.nan_mismatch == matched.inf_mismatch == 0
    nan_moved = StageDiff.measure("x", a, np.array([1.0, np.nan, np.inf, -np.inf]), 1e-6)
    assert not nan_moved.passed and nan_moved.nan_mismatch == 2
    inf_sign = StageDiff.measure("x", a, np.array([np.nan, 1.0, -np.inf, -np.inf]), 1e-6)
    assert not inf_sign.passed and inf_sign.inf_mismatch == 2
    assert StageDiff.measure("x", a, a.copy(), 1e-6).max_rel == 0.0


def test_shape_mismatch_and_zero_reference():
    assert not StageDiff.measure("x", np.zeros((2, 3)), np.zeros((3, 2)), 1.0).passed
    assert StageDiff.measure("x", np.zeros(3), np.zeros(3), 0.0).passed
    assert StageDiff.measure("x", np.zeros(3), np.array([0, 1e-9, 0]), 1.0).max_rel == math.inf


@pytest.fixture(scope="module")
def ported18(spec18):
    t, k = build_pair(spec18)
    set_weights(t, random_weights(spec18, 0))
    copy_weights(t, k)
    return t, k


def test_report_is_json_with_every_stage(ported18, spec18):
    t, k = ported18
    report = compare(t, k, random_input(spec18, 2, 64, 80, 0))
    data = json.loads(report.to_json())
    assert data["passed"] is True and data["first_divergent"] is None
    assert [s["stage"] for s in data["stages"]] == list(spec18.stage_names)
    assert data["tolerance"] == tolerances.FP32_NOISE_MULTIPLE and data["tolerance_name"] == "FP32_NOISE_MULTIPLE"
    assert data["stages"][-1]["shape_a"] == [2, 1000]
    assert 0 < data["stages"][-1]["max_rel"] <= tolerances.FP32_NOISE_MULTIPLE * data["stages"][-1]["noise"]
    assert [s["stage"] for s in data["float64_stages"]] == list(spec18.stage_names)
    assert data["port_passed"] is True and data["first_wrong_block"] is None
    prov = data["provenance"]
    assert prov["versions"]["torch"] and prov["versions"]["keras"] and prov["versions"]["onnxruntime"]
    assert prov["keras_backend"] == "tensorflow" and prov["device"] == "cpu" and prov["dtype"] == "float32"
    assert prov["tf32"] is False


def test_nan_input_verdicts(ported18, spec18):
    t, k = ported18
    x = random_input(spec18, 2, 64, 64, 0)
    x[0, 1, 10, 20] = np.nan
    # Same framework: NaN spreads identically and the masks match, yet two NaNs are no evidence of anything:
    # a FAIL, said first in one line.
    t2 = resnet_torch.ResNet(spec18)
    copy_weights(t, t2)
    same = compare(t, t2, x)
    assert not same.passed and same.logits.nan_a == same.logits.nan_b == 1000 and same.logits.nan_mismatch == 0
    assert same.nonfinite == (
        "not finite: the input holds 1 NaN of 24,576 values -> torch (reference): not finite from stem on, logits "
        "1,000 NaN of 2,000; torch (under test): not finite from stem on, logits 1,000 NaN of 2,000"
    )
    assert str(same).splitlines()[1] == "  " + same.nonfinite
    # torch vs Keras/TF: torch's max-pool propagates NaN, TF's drops it, so masks differ from the
    # stem on. The correct verdict is a mismatch that names the stem.
    cross = compare(t, k, x)
    assert not cross.passed
    assert cross.first_divergent == "stem"
    assert cross.stage("stem").nan_mismatch > 0
    # The finite sample still agrees to the noise floor.
    assert cross.stage("stem").max_rel <= tolerances.FP32_CPU


def test_inf_input_masks_match(ported18, spec18):
    t, k = ported18
    x = random_input(spec18, 1, 64, 64, 0)
    x[0, 0, 5, 5] = np.inf
    report = compare(t, k, x)
    assert report.stage("layer1").nan_a > 0  # inf - inf somewhere downstream
    assert report.stage("layer1").nan_mismatch == report.stage("layer1").inf_mismatch == 0  # the masks agree
    assert not report.passed and report.nonfinite.startswith("not finite: the input holds 1 inf of 12,288 values")


@pytest.mark.parametrize(
    "difference, size, first",
    [
        ("same_padding", (224, 224), "stem"),  # even sizes: TF pads the odd pixel bottom/right
        ("same_padding", (97, 131), "stem"),  # 131 -> 66 at the stem pool: even again
        ("bn_eps_default", (64, 64), "stem"),
    ],
)
def test_naive_keras_port_is_caught(spec18, difference, size, first):
    t = resnet_torch.ResNet(spec18)
    k = adapter_named("keras").build_naive(spec18, difference)
    set_weights(t, random_weights(spec18, 0))
    copy_weights(t, k)
    report = compare(t, k, random_input(spec18, 1, *size, 0))
    assert not report.passed
    assert report.first_divergent == first
    assert report.stage(first).max_rel > 10 * tolerances.FP32_CPU


def test_same_padding_is_harmless_when_every_strided_input_is_odd(spec18):
    # 97 -> 49 -> 25 -> 13 -> 7: each stride-2 op sees an odd size, where 'same' pads symmetrically.
    t = resnet_torch.ResNet(spec18)
    k = adapter_named("keras").build_naive(spec18, "same_padding")
    set_weights(t, random_weights(spec18, 0))
    copy_weights(t, k)
    assert compare(t, k, random_input(spec18, 1, 97, 97, 0)).passed


def test_wrong_bn_eps_in_one_stage_is_located(ported18, spec18):
    t, _ = ported18
    _, k = build_pair(spec18)
    copy_weights(t, k)
    for block in k.layer3.layers:
        for layer in block._flatten_layers():
            if hasattr(layer, "epsilon"):
                layer.epsilon = 1e-3
    report = compare(t, k, random_input(spec18, 1, 64, 64, 0))
    assert [s.passed for s in report.stages] == [True, True, True, False, False, False]
    assert report.first_divergent == "layer3"


def test_compare_refuses_bad_input(ported18):
    t, k = ported18
    with pytest.raises(ValueError, match=r"x must be NCHW with 3 channels, got shape \(1, 64, 64, 3\)"):
        compare(t, k, np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="device must be one of"):
        compare(t, k, np.zeros((1, 3, 64, 64), np.float32), device="tpu")
    with pytest.raises(ValueError, match="different specs"):
        compare(t, resnet_torch.resnet18(num_classes=10), np.zeros((1, 3, 64, 64), np.float32))


def test_precision_on_cpu_changes_nothing():
    with precision("cpu") as tf32:
        assert tf32 is False


def test_default_tolerance_follows_device_and_tf32():
    assert tolerances.for_run("cpu", arch="resnet50") == ("FP32_FIXED[resnet50]", tolerances.FP32_FIXED["resnet50"])
    assert tolerances.for_run("cpu") == ("FP32_CPU", tolerances.FP32_CPU)
    assert tolerances.for_run("cuda") == ("FP32_CUDA", tolerances.FP32_CUDA)
    assert tolerances.for_run("cuda", allow_tf32=True) == ("TF32_CUDA", tolerances.TF32_CUDA)
    # Any other network takes the figure measured at its depth: the nearest, the deeper one on a tie.
    assert make_spec("resnet50d").depth == 52 and make_spec("resnet18", num_classes=0).depth == 17
    name, value = tolerances.for_run("cpu", arch="resnet50d", depth=make_spec("resnet50d").depth)
    assert (name, value) == ("FP32_FIXED[resnet50] (depth 52)", tolerances.FP32_FIXED["resnet50"])
    assert tolerances.for_run("cpu", arch="resnet26", depth=26)[1] == tolerances.FP32_FIXED["resnet34"]
    assert tolerances.for_run("cpu", arch="resnet200", depth=200)[1] == tolerances.FP32_FIXED["resnet152"]
    assert tolerances.TF32_CUDA > tolerances.FP32_CUDA
