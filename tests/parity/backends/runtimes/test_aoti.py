"""torch.export + AOTInductor (.pt2) from torch: the torch model is the port here (keras2torch)."""

from __future__ import annotations

import pytest

from parity.checks.runtimes import runtime_rows
from tests.parity.backends.runtimes.conftest import assert_caught, assert_passes, planted


# Extended tier: AOTInductor compiles C++ for every package, about 16 s each on 2 cores whatever the network's size
# (the wrapper and its runtime headers), and this test compiles four (two whole models, two units): 50-60 s, more
# than every other runtime's test together. `check --runtime aoti` runs the same code.
@pytest.mark.extended
def test_aoti_passes_a_port_and_localises_a_planted_bug(pair):
    t, k, x = pair
    torch_row, bugged = runtime_rows(["aoti"], k, [t, planted(t)], x)
    assert_passes(torch_row)
    assert_caught(bugged)
