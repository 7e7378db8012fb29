"""parity.io.libraries.keras_applications: keras.applications ResNets reproduced by both backends."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import resnet_keras
import resnet_torch
from parity.checks.compare import run_stages
from parity.checks.diff import StageDiff
from parity.core import tolerances
from parity.io.libraries.keras_applications import (
    canonical_layer_name,
    from_keras_applications,
    spec_for,
    to_keras_applications,
)
from parity.io.weights import WeightMismatchError, random_weights, set_weights
from parity.spec import make_spec

INPUT_HWC = (96, 112, 3)


def test_naming_rule():
    assert canonical_layer_name("conv1_conv") == "conv1"
    assert canonical_layer_name("conv2_block1_0_conv") == "layer1.0.downsample.0"
    assert canonical_layer_name("conv3_block2_0_bn") == "layer2.1.downsample.1"
    assert canonical_layer_name("conv4_block23_3_bn") == "layer3.22.bn3"
    assert canonical_layer_name("predictions") == "fc"
    with pytest.raises(KeyError, match="avg_pool"):
        canonical_layer_name("avg_pool")


@pytest.fixture(scope="module")
def kapp50():
    """keras.applications ResNet50, random weights, randomized (non-identity) BN statistics."""
    # weights=None with the head on still fixes the input size; any static size >= 32 is allowed.
    model = keras.applications.ResNet50(weights=None, classifier_activation=None, input_shape=INPUT_HWC)
    spec = spec_for(model)
    to_keras_applications(model, random_weights(spec, 5))
    return model, spec


def test_keras_applications_variant_counts(kapp50):
    model, spec = kapp50
    assert spec == make_spec("resnet50", "keras_applications")
    ours = resnet_keras.ResNet(spec)
    assert ours.count_params() == model.count_params() == 25_636_712


def test_both_backends_reproduce_keras_applications(kapp50):
    model, spec = kapp50
    weights = from_keras_applications(model)
    x = np.random.default_rng(0).standard_normal((2, 3, *INPUT_HWC[:2])).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(x.transpose(0, 2, 3, 1), training=False))
    for backend in (resnet_torch, resnet_keras):
        ours = backend.ResNet(spec)
        set_weights(ours, weights)
        diff = StageDiff.measure("logits", expected, run_stages(ours, x)["logits"], tolerances.FP32_CPU)
        assert diff.passed, (backend.__name__, diff)


def test_softmax_head_is_a_softmax_of_our_logits(kapp50):
    model, spec = kapp50
    with_softmax = keras.applications.ResNet50(weights=None, input_shape=INPUT_HWC)  # softmax head
    to_keras_applications(with_softmax, from_keras_applications(model))
    ours = resnet_torch.ResNet(spec)
    set_weights(ours, from_keras_applications(model))
    x = np.random.default_rng(1).standard_normal((1, 3, *INPUT_HWC[:2])).astype(np.float32)
    probs = keras.ops.convert_to_numpy(with_softmax(x.transpose(0, 2, 3, 1), training=False))
    logits = run_stages(ours, x)["logits"].astype(np.float64)
    softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert StageDiff.measure("probs", probs, softmax, tolerances.FP32_CPU).passed
    assert abs(probs.sum() - 1) < 1e-5 and probs.max() < 0.5  # really a softmax, over random logits


def test_torchvision_variant_weights_do_not_fit(kapp50):
    model, _ = kapp50
    with pytest.raises(WeightMismatchError) as info:
        to_keras_applications(model, random_weights(make_spec("resnet50"), 0))
    assert "conv1.bias" in str(info.value)  # keras.applications convs carry biases


def test_v2_naming_rule():
    assert canonical_layer_name("conv2_block1_preact_bn", preact=True) == "layer1.0.bn1"
    assert canonical_layer_name("conv2_block1_1_bn", preact=True) == "layer1.0.bn2"  # the BN before conv2
    assert canonical_layer_name("conv3_block4_2_bn", preact=True) == "layer2.3.bn3"
    assert canonical_layer_name("conv5_block3_3_conv", preact=True) == "layer4.2.conv3"
    assert canonical_layer_name("conv4_block1_0_conv", preact=True) == "layer3.0.downsample.0"
    assert canonical_layer_name("post_bn", preact=True) == "post_bn"


V2_HWC = (64, 64, 3)


@pytest.fixture(scope="module")
def v2_files(tmp_path_factory):
    """keras.applications ResNet50V2 (5 classes, random weights) saved the three ways Keras users save it."""
    model = keras.applications.ResNet50V2(weights=None, classes=5, classifier_activation=None, input_shape=V2_HWC)
    spec = spec_for(model)
    to_keras_applications(model, random_weights(spec, 7))
    folder = tmp_path_factory.mktemp("v2")
    files = {ext: folder / f"resnet50v2{ext}" for ext in (".keras", ".h5", ".weights.h5")}
    model.save(files[".keras"])
    model.save(files[".h5"])
    model.save_weights(files[".weights.h5"])
    x = np.random.default_rng(2).standard_normal((2, 3, *V2_HWC[:2])).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(x.transpose(0, 2, 3, 1), training=False))
    return model, spec, files, x, expected


def test_v2_spec_and_counts(v2_files):
    model, spec, *_ = v2_files
    assert spec == make_spec("resnet50v2", num_classes=5)
    # Our two models count as the spec does (tests/parity/checks/test_families.py builds them).
    assert spec.param_counts()["keras_total"] == model.count_params() == 23_575_045


def test_v2_file_loads_with_no_flags_into_both_backends(v2_files):
    import parity

    _, spec, files, x, expected = v2_files
    for backend in ("torch", "keras"):
        ours = parity.load_model(files[".keras"], backend=backend)
        assert ours.spec == spec
        diff = StageDiff.measure("logits", expected, run_stages(ours, x)["logits"], tolerances.FP32_CPU)
        assert diff.passed, (backend, diff)


@pytest.mark.parametrize("ext", [".h5", ".weights.h5"])
def test_v2_other_file_kinds_hold_the_same_network(v2_files, ext):
    from parity.io.checkpoints import read_with_spec

    model, spec, files, *_ = v2_files
    found, weights = read_with_spec(files[ext])  # the same reader the models load through
    assert found == spec
    expected = from_keras_applications(model)
    assert weights.keys() == expected.keys()
    assert all(np.array_equal(weights[k], expected[k]) for k in expected)


def test_include_top_false_is_a_headless_spec(tmp_path):
    import parity

    model = keras.applications.ResNet50(weights=None, include_top=False, pooling="avg", input_shape=(64, 64, 3))
    spec = spec_for(model)
    assert (spec.name, spec.variant, spec.num_classes, spec.pooling) == ("resnet50", "keras_applications", 0, "avg")
    assert model.count_params() == spec.param_counts()["keras_total"] == 23_587_712
    model.save(tmp_path / "headless.keras")
    ours = parity.load_model(tmp_path / "headless.keras", backend="torch")
    x = np.random.default_rng(3).standard_normal((1, 3, 64, 64)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(x.transpose(0, 2, 3, 1), training=False))
    diff = StageDiff.measure("features", expected, run_stages(ours, x)["features"], tolerances.FP32_CPU)
    assert diff.passed and diff.shape_b == [1, 2048]


def test_a_functional_that_is_not_a_resnet_is_refused_in_one_line(tmp_path):
    from parity.io.checkpoints import CheckpointError, read_with_spec

    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv2d")(inputs)).save(tmp_path / "other.keras")
    with pytest.raises((CheckpointError, ValueError), match=r"other.keras: not a keras.applications ResNet"):
        read_with_spec(tmp_path / "other.keras")


@pytest.mark.extended
def test_resnet101v2_file_reproduces_keras_applications(tmp_path):
    import parity

    model = keras.applications.ResNet101V2(weights=None, classes=3, classifier_activation=None, input_shape=(64, 64, 3))
    spec = spec_for(model)
    assert spec == make_spec("resnet101v2", num_classes=3)
    to_keras_applications(model, random_weights(spec, 11))
    model.save(tmp_path / "r101v2.keras")
    x = np.random.default_rng(4).standard_normal((1, 3, 64, 64)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(x.transpose(0, 2, 3, 1), training=False))
    for backend in ("torch", "keras"):
        ours = parity.load_model(tmp_path / "r101v2.keras", backend=backend)
        diff = StageDiff.measure("logits", expected, run_stages(ours, x)["logits"], tolerances.FP32_CPU)
        assert diff.passed, (backend, diff)


def test_convert_to_keras_applications_keeps_the_sources_head_and_input(tmp_path, capsys):
    """A keras.applications file's softmax head and its input size are part of the network it describes: written
    back for keras.applications, they stay (its outputs are the source's probabilities, at its 64x64 input)."""
    from parity.cli import main

    model = keras.applications.ResNet50V2(weights=None, classes=5, input_shape=V2_HWC)  # softmax, keras' default
    spec = spec_for(model)
    to_keras_applications(model, random_weights(spec, 7))
    model.save(tmp_path / "v2.h5")
    assert main(["convert", str(tmp_path / "v2.h5"), str(tmp_path / "back.keras"), "--to", "keras-applications"]) == 0
    assert "as the source: classifier activation softmax, input 64x64x3" in capsys.readouterr().err
    back = keras.models.load_model(tmp_path / "back.keras", compile=False)
    assert back.input_shape == (None, *V2_HWC) and back.get_layer("predictions").activation.__name__ == "softmax"
    x = np.random.default_rng(4).standard_normal((2, *V2_HWC)).astype(np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(back(x)), keras.ops.convert_to_numpy(model(x)))


def test_a_layer_no_keras_applications_resnet_has_is_refused_naming_it(tmp_path):
    """A Lambda on the input of a keras.applications ResNet was skipped: the file read as the bare ResNet."""
    import parity
    from parity.io.checkpoints import CheckpointError, read_with_spec

    inputs = keras.Input((32, 32, 3))
    doubled = keras.layers.Lambda(lambda t: t * 2, name="double")(inputs)
    resnet = keras.applications.ResNet50V2(weights=None, classes=3, input_tensor=doubled)
    wrapped = keras.Model(inputs, resnet.output)
    for ext in (".keras", ".h5"):
        wrapped.save(tmp_path / f"wrapped{ext}")
        with pytest.raises(
            CheckpointError, match=rf"wrapped{ext}: layer 'double' is a Lambda, which no keras.applications"
        ):
            read_with_spec(tmp_path / f"wrapped{ext}")
        with pytest.raises(CheckpointError, match="layer 'double' is a Lambda"):
            parity.load_model(tmp_path / f"wrapped{ext}", backend="torch")


def test_a_keras_file_of_another_model_is_refused_before_keras_rebuilds_it(tmp_path, capsys):
    """A Sequential with a Lambda: Keras' TypeError ('Could not locate function') escaped as a traceback."""
    from parity.cli import main

    def double(t):
        return t * 2

    keras.Sequential([keras.Input((8,)), keras.layers.Lambda(double), keras.layers.Dense(2)]).save(
        tmp_path / "seq.keras"
    )
    assert main(["check", "--weights", str(tmp_path / "seq.keras"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"resnet-parity check: error: {tmp_path / 'seq.keras'} holds a Keras Sequential of Dense, InputLayer, Lambda, "
        "neither a resnet_keras.ResNet nor a keras.applications ResNet; nothing in it was loaded or run"
    ]
