"""torch.export + AOTInductor (.pt2) from torch: the torch model is the port here (keras2torch)."""

from __future__ import annotations

from parity.checks.runtimes import runtime_rows
from tests.parity.backends.runtimes.conftest import assert_caught, assert_passes, planted


def test_aoti_passes_a_port_and_localises_a_planted_bug(pair):
    t, k, x = pair
    torch_row, bugged = runtime_rows(["aoti"], k, [t, planted(t)], x)
    assert_passes(torch_row)
    assert_caught(bugged)
