"""ExecuTorch (XNNPACK .pte) from torch: the torch model is the port here (keras2torch), the bug planted in it."""

from __future__ import annotations

from parity.checks.runtimes import runtime_rows
from tests.parity.backends.runtimes.conftest import assert_caught, assert_passes, planted


def test_executorch_passes_a_port_and_localises_a_planted_bug(pair):
    t, k, x = pair
    torch_row, bugged, keras_row = runtime_rows(["executorch"], k, [t, planted(t), k], x)
    assert_passes(torch_row)
    assert torch_row.route == "torch.export -> ExecuTorch XNNPACK"
    assert_caught(bugged)
    assert keras_row.skipped == "executorch takes torch models, not keras"
