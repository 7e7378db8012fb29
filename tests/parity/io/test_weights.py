"""parity.io.weights: strict, atomic, bit-exact ports in every direction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import resnet_keras
import resnet_torch
from parity.backends import backend_of
from parity.checks.compare import run_stages
from parity.io.weights import (
    WeightMismatchError,
    copy_weights,
    get_weights,
    random_weights,
    set_weights,
)


@pytest.fixture(scope="module")
def pair18(spec18):
    return resnet_torch.ResNet(spec18), resnet_keras.ResNet(spec18)


def assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_backend_detection(pair18):
    assert [backend_of(m) for m in pair18] == ["torch", "keras"]
    with pytest.raises(TypeError, match="expected a resnet_torch or resnet_keras model, got dict"):
        backend_of({})


def test_random_weights_are_seeded_and_not_identity_bn(spec18):
    a, b = random_weights(spec18, 7), random_weights(spec18, 7)
    assert_same(a, b)
    assert not np.array_equal(a["conv1.weight"], random_weights(spec18, 8)["conv1.weight"])
    assert np.all(a["bn1.running_var"] != 1) and np.all(a["bn1.running_mean"] != 0)
    assert np.all(a["bn1.weight"] != 1) and np.all(a["bn1.bias"] != 0)


def test_torch_keras_torch_is_bit_exact(spec50):
    weights = random_weights(spec50, 0)
    t1, k, t2 = resnet_torch.ResNet(spec50), resnet_keras.ResNet(spec50), resnet_torch.ResNet(spec50)
    set_weights(t1, weights)
    copy_weights(t1, k)
    copy_weights(k, t2)
    assert_same(get_weights(t1), weights)
    assert_same(get_weights(k), weights)
    assert_same(get_weights(t2), weights)


def test_keras_to_keras_and_torch_to_torch(spec18):
    weights = random_weights(spec18, 1)
    k1, k2 = resnet_keras.ResNet(spec18), resnet_keras.ResNet(spec18)
    set_weights(k1, weights)
    copy_weights(k1, k2)
    assert_same(get_weights(k2), weights)
    t1, t2 = resnet_torch.ResNet(spec18), resnet_torch.ResNet(spec18)
    set_weights(t1, weights)
    copy_weights(t1, t2)
    assert_same(get_weights(t2), weights)


def test_layouts_are_transposed_not_reshaped(pair18, spec18):
    t, k = pair18
    weights = random_weights(spec18, 2)
    set_weights(k, weights)
    # Keras conv kernels are HWIO and dense kernels in x out.
    np.testing.assert_array_equal(k.conv1.kernel.numpy(), weights["conv1.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(k.fc.kernel.numpy(), weights["fc.weight"].T)
    np.testing.assert_array_equal(k.bn1.moving_variance.numpy(), weights["bn1.running_var"])


def test_num_batches_tracked_is_accepted_and_ignored(pair18, spec18):
    t, k = pair18
    checkpoint = {**random_weights(spec18, 3), "bn1.num_batches_tracked": np.array(5)}
    set_weights(k, checkpoint)
    set_weights(t, checkpoint)
    assert "bn1.num_batches_tracked" not in get_weights(t)


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_bad_checkpoint_lists_every_name_and_changes_nothing(pair18, spec18, backend):
    model = pair18[0] if backend == "torch" else pair18[1]
    set_weights(model, random_weights(spec18, 4))
    x = np.random.default_rng(0).standard_normal((1, 3, 48, 48)).astype(np.float32)
    before_weights = get_weights(model)
    before_out = run_stages(model, x)["logits"]

    bad = random_weights(spec18, 5)
    del bad["layer3.1.bn2.running_var"]
    bad["layer9.0.conv1.weight"] = np.zeros((1,), np.float32)
    bad["layer2.0.conv1.weight"] = bad["layer2.0.conv1.weight"][:, :-1]
    bad["fc.bias"] = np.zeros(1000, np.int64)
    with pytest.raises(WeightMismatchError) as info:
        set_weights(model, bad)
    message = str(info.value)
    assert "missing key(s): layer3.1.bn2.running_var" in message
    assert "unexpected key(s): layer9.0.conv1.weight" in message
    assert "layer2.0.conv1.weight (expected (128, 64, 3, 3), got (128, 63, 3, 3))" in message
    assert "fc.bias (expected a float tensor, got dtype int64)" in message
    assert info.value.missing == ["layer3.1.bn2.running_var"]
    assert_same(get_weights(model), before_weights)
    np.testing.assert_array_equal(run_stages(model, x)["logits"], before_out)


def test_non_strict_skips_missing_but_checks_shapes(pair18, spec18):
    t, _ = pair18
    partial = {"fc.bias": np.full(1000, 0.5, np.float32)}
    set_weights(t, partial, strict=False)
    assert torch.all(t.fc.bias == 0.5)
    with pytest.raises(WeightMismatchError, match="fc.bias"):
        set_weights(t, {"fc.bias": np.zeros(10, np.float32)}, strict=False)


def test_other_depth_is_refused(spec18):
    t50 = resnet_torch.resnet50()
    with pytest.raises(WeightMismatchError) as info:
        set_weights(t50, random_weights(spec18, 0))
    assert "layer1.0.conv3.weight" in str(info.value)  # resnet50 key missing from a resnet18 dict
    assert "mis-shaped" in str(info.value)
