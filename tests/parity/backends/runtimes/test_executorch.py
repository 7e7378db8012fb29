"""ExecuTorch (XNNPACK .pte) from torch: the torch model is the port here (keras2torch), the bug planted in it."""

from __future__ import annotations

import pytest

from parity.checks.runtimes import runtime_rows
from tests.parity.backends.runtimes.conftest import assert_caught, assert_passes, planted


def test_executorch_passes_a_port(pair):
    t, k, x = pair
    torch_row, keras_row = runtime_rows(["executorch"], k, [t, k], x)
    assert_passes(torch_row)
    assert torch_row.route == "torch.export -> ExecuTorch XNNPACK"
    assert keras_row.skipped == "executorch takes torch models, not keras"


# The extended tier: three more XNNPACK lowerings (about 15 s); the unit search inside a runtime is the same code for
# every runtime, and CI runs it on onnxruntime, OpenVINO and LiteRT.
@pytest.mark.extended
def test_executorch_localises_a_planted_bug(pair):
    t, k, x = pair
    (bugged,) = runtime_rows(["executorch"], k, [planted(t)], x)
    assert_caught(bugged)
