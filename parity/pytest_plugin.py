"""pytest plugin (entry point `resnet_parity`): parity fixtures for users' test suites.

Importing it imports no framework; the fixtures import what they need when used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def parity_input() -> Callable[..., Any]:
    """Factory: `parity_input(model, batch=2, size=64, seed=0)` -> a seeded NCHW float32 batch."""
    from parity.testing import seeded_input

    return seeded_input


@pytest.fixture(name="assert_parity")
def assert_parity_fixture() -> Callable[..., Any]:
    """`assert_parity(model_a, model_b, x=None, ...)`: see `parity.testing.assert_parity`."""
    from parity.testing import assert_parity

    return assert_parity
