"""LiteRT from Keras' own export; from torch only through litert-torch, whose absence is one line."""

from __future__ import annotations

import importlib.util

import pytest

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


def test_litert_writes_fp16_weights_and_int8_from_a_representative_dataset(pair, tmp_path):
    import numpy as np

    from parity.backends import adapter
    from parity.backends.runtimes import runtime_named
    from parity.checks.engines import Engine
    from parity.io.photos import CALIBRATION, photo_inputs

    t, k, x = pair
    reference = adapter(k).run_stages(k, x)["logits"]
    calibration = photo_inputs(k.spec, CALIBRATION, x.shape[2], x.shape[3], 8)
    for precision, error in (("fp16", (2**-13, 2**-6)), ("int8", (2**-9, 0.3))):
        engine = Engine(precision, k, runtime_named("litert"))
        out = engine.runner(k, x.shape, [calibration], tmp_path / precision)(x)
        relative = float(np.abs(out - reference).max() / np.abs(reference).max())
        assert error[0] < relative < error[1], (precision, relative)  # really lowered, and still the network
        assert engine.seen.startswith(f"{precision} (") and engine.how().startswith("Keras export -> LiteRT, ")
    torch_engine = Engine("int8", t, runtime_named("litert"))
    if importlib.util.find_spec("litert_torch") is None:  # no torch route here: said, never a failure
        from parity.core.errors import Unavailable

        with pytest.raises(Unavailable, match="^litert from torch needs litert-torch"):
            torch_engine.runner(t, x.shape, [calibration], tmp_path / "torch")
