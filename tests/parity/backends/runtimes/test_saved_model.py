"""TF SavedModel from Keras' own export, run by TensorFlow."""

from __future__ import annotations

from parity.checks.runtimes import runtime_rows
from tests.parity.backends.runtimes.conftest import assert_caught, assert_passes, planted


def test_saved_model_passes_a_port_and_localises_a_planted_bug(pair):
    t, k, x = pair
    torch_row, keras_row, bugged = runtime_rows(["saved_model"], t, [t, k, planted(k)], x)
    assert torch_row.skipped == "saved_model takes keras models, not torch"
    assert_passes(keras_row)
    assert_caught(bugged)
