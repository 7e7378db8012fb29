"""parity.testing.assert_parity and the pytest plugin's fixtures, used as a user's test would."""

from __future__ import annotations

import pytest

import resnet_keras
import resnet_torch
from parity.io.weights import copy_weights, random_weights, set_weights
from parity.testing import assert_parity as assert_parity_function


@pytest.fixture(scope="module")
def pair():
    torch_model = resnet_torch.resnet18(num_classes=10)
    keras_model = resnet_keras.resnet18(num_classes=10)
    set_weights(torch_model, random_weights(torch_model.spec, 0, calibrate=True, size=48))
    copy_weights(torch_model, keras_model)
    return torch_model, keras_model


def test_readme_usage_passes(pair):
    torch_model, keras_model = pair
    report = assert_parity_function(torch_model, keras_model)
    assert report.passed and report.input_shape == [2, 3, 64, 64]


def test_failure_message_is_the_table_naming_block_and_layer(pair):
    torch_model, _ = pair
    broken = resnet_keras.resnet18(num_classes=10)
    copy_weights(torch_model, broken)
    from parity.backends.keras import sublayer

    sublayer(broken, "layer2.1.bn1").epsilon = 1e-3
    with pytest.raises(AssertionError) as info:
        assert_parity_function(torch_model, broken)
    message = str(info.value)
    assert "first wrong block: layer2.1; first wrong layer: layer2.1.bn1" in message
    assert "stage" in message and "layer2" in message and "FAIL" in message


def test_plugin_fixtures(pair, assert_parity, parity_input):
    torch_model, keras_model = pair
    x = parity_input(torch_model, batch=1, size=(40, 56), seed=3)
    assert x.shape == (1, 3, 40, 56)
    assert assert_parity(keras_model, torch_model, x=x).passed


def test_plugin_is_registered_by_entry_point(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("resnet_parity")


def test_nan_mask_mismatch_fails_not_zeroed(pair):
    import numpy as np

    torch_model, keras_model = pair
    x = np.random.default_rng(0).standard_normal((1, 3, 48, 48)).astype(np.float32)
    x[0, 0, 7, 9] = np.nan  # torch's max-pool spreads it, TF's drops it
    with pytest.raises(AssertionError, match="NaN"):
        assert_parity_function(torch_model, keras_model, x=x)
