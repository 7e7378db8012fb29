"""A narrow network, its two models and a planted bug: what every runtime's test carries to its runtime."""

from __future__ import annotations

import numpy as np
import pytest

from parity.backends import adapter
from parity.checks.check import build_pair, default_weights
from parity.io.inputs import random_input
from parity.io.weights import copy_weights, set_weights
from parity.spec import make_spec

SPEC = make_spec("resnet18", widths=(8, 16, 32, 64), stem_width=8, num_classes=10, layers=(1, 1, 1, 1))
SIZE = 64
"""At 64 layer4 keeps a 2x2 map; at 32 its 1x1 map makes torch.export bound height and width at 32 (AOTInductor then
runs a 33x33 input without an error and wrongly: `parity.checks.runtimes` probes for exactly that)."""
BUG = "layer1.0.conv1.weight"
"""The planted bug: output channel 0 of this conv scaled by 1.0001 in the model under test."""


@pytest.fixture(scope="module")
def pair():
    """(torch model, Keras model, NCHW input): one seeded, BN-calibrated network ported torch -> Keras."""
    t, k = build_pair(SPEC)
    set_weights(t, default_weights(SPEC, 0, SIZE, SIZE))
    copy_weights(t, k)
    return t, k, random_input(SPEC, 2, SIZE, SIZE, 0)


def planted(model, scale: float = 1.0001):
    """A copy of `model` (same backend) with the planted bug."""
    side = adapter(model)
    weights = side.get_weights(model)
    weights[BUG] = weights[BUG].copy()
    weights[BUG][0] *= scale
    copy = side.build(SPEC)
    set_weights(copy, weights)
    return copy


def assert_caught(row) -> None:
    """The planted bug: the row fails, and the unit search inside the runtime stops at layer1.0 (the stem passes)."""
    assert not row.passed and row.diff.ratio > 10, row.to_dict()
    assert [u.stage for u in row.units] == ["stem", "layer1.0"] and row.first_wrong_unit == "layer1.0", row.to_dict()
    assert row.units[0].passed and not row.units[1].passed


def assert_passes(row) -> None:
    """A correct port: within the fp32 rule, fp32 recorded, every probed shape run and right."""
    from parity.core import tolerances

    assert row.passed and row.diff.ratio <= tolerances.FP32_NOISE_MULTIPLE, row.to_dict()
    assert row.precision == "fp32" and row.evidence
    assert [p.label for p in row.probes] == ["batch 1", "batch 3", "65x65", "66x66"]
    assert all(p.passed for p in row.probes), row.to_dict()
    assert row.file_bytes > 0 and row.ms_per_batch > 0 and np.isfinite(row.diff.max_rel)
