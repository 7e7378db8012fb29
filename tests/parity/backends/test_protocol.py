"""Each adapter defines what `parity.backends.protocol.Adapter` lists, with the same parameters."""

from __future__ import annotations

import inspect

import pytest

from parity.backends import BACKENDS, adapter_named
from parity.backends.protocol import MEMBERS, Adapter, missing


@pytest.mark.parametrize("name", BACKENDS)
def test_adapter_defines_every_member_of_the_protocol(name):
    module = adapter_named(name)
    assert missing(module) == []
    assert name == module.NAME
    for member in MEMBERS:
        wanted = getattr(Adapter, member, None)
        if not callable(wanted):
            continue
        expected = [p for p in inspect.signature(wanted).parameters if p != "self"]
        got = list(inspect.signature(getattr(module, member)).parameters)
        assert got == expected, f"{name}.{member}{got} differs from the protocol's {expected}"


def test_missing_names_what_a_new_backend_still_owes():
    import types

    half = types.ModuleType("half")
    half.NAME, half.build = "half", lambda spec, dtype="float32": None
    owed = missing(half)
    assert "build" not in owed and "get_weights" in owed and "train_step_with_gradients" in owed
