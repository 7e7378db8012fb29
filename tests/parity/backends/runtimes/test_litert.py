"""LiteRT from Keras' own export; from torch only through litert-torch, whose absence is one line."""

from __future__ import annotations

import importlib.util

from parity.checks.runtimes import runtime_rows
from tests.parity.backends.runtimes.conftest import assert_caught, assert_passes, planted


def test_litert_passes_a_port_and_localises_a_planted_bug(pair):
    t, k, x = pair
    rows = runtime_rows(["litert"], t, [t, k, planted(k)], x)
    torch_row, keras_row, bugged = rows
    if importlib.util.find_spec("litert_torch") is None:
        assert torch_row.skipped.startswith("litert from torch needs litert-torch, which is not installed here")
        assert torch_row.passed  # skipped is not failed
    assert_passes(keras_row)
    assert keras_row.route == "Keras export -> LiteRT"
    assert_caught(bugged)
