"""The adapters are `Adapter` objects: every abstract method implemented, made once, nothing configured on import."""

from __future__ import annotations

import inspect

import pytest

from parity.backends import BACKENDS, adapter_named
from parity.backends.interface import Adapter
from tests.conftest import run_python


@pytest.mark.parametrize("name", BACKENDS)
def test_each_backend_is_an_instance_of_the_one_interface(name):
    side = adapter_named(name)
    assert isinstance(side, Adapter)
    assert name == side.NAME
    assert not inspect.isabstract(type(side)), sorted(getattr(type(side), "__abstractmethods__", ()))
    assert adapter_named(name) is side  # made once per process
    for member, wanted in vars(Adapter).items():
        if member.startswith("_") or not callable(wanted):
            continue
        expected = list(inspect.signature(wanted).parameters)
        got = ["self", *inspect.signature(getattr(side, member)).parameters]
        assert got == expected, f"{name}.{member}{got} differs from Adapter's {expected}"


def test_a_new_backend_cannot_be_made_until_it_implements_every_abstract_method():
    class Half(Adapter):
        NAME = "half"

        def build(self, spec, dtype="float32"):
            return None

    with pytest.raises(TypeError, match="abstract") as caught:
        Half()
    owed = str(caught.value)
    assert "get_weights" in owed and "train_step_with_gradients" in owed and "build," not in owed


def test_importing_an_adapter_configures_nothing_making_it_applies_threads():
    code = (
        "import torch\n"
        "torch.set_num_threads(2)\n"
        "from parity.core import threads\n"
        "threads.configure(1)\n"
        "import parity.backends.torch\n"
        "assert torch.get_num_threads() == 2, 'configured on import'\n"
        "from parity.backends import adapter_named\n"
        "adapter_named('torch')\n"
        "assert torch.get_num_threads() == 1, torch.get_num_threads()\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr[-2000:]


def test_only_one_backend_builds_naive_ports_and_the_other_says_so():
    from parity.spec import make_spec

    assert "same_padding" in adapter_named("keras").naive_ports()
    assert adapter_named("torch").naive_ports() == ()
    with pytest.raises(ValueError, match="unknown difference 'same_padding'; the torch adapter builds no naive ports"):
        adapter_named("torch").build_naive(make_spec("resnet18"), "same_padding")


def test_a_weights_file_without_its_spec_is_refused_in_one_line(tmp_path):
    """Found by mypy: the Keras adapter built `ResNet(None)` for a `.weights.h5` read without a spec."""
    from parity.core.errors import CheckpointError

    path = tmp_path / "w.weights.h5"
    path.write_bytes(b"not read")
    with pytest.raises(CheckpointError, match=r"w.weights.h5: a .weights.h5 file holds no architecture"):
        adapter_named("keras").read_native("keras-weights", path, None)


def test_both_data_parallel_engines_answer_every_call_of_the_interface():
    """Found by mypy: `check_sync_bn` was called on an engine whose interface did not have it."""
    from parity.backends.interface import DataParallel

    wanted = [name for name in vars(DataParallel) if not name.startswith("_")]
    for name in BACKENDS:
        engine = adapter_named(name).data_parallel()
        assert all(hasattr(engine, member) for member in wanted), (name, [m for m in wanted if not hasattr(engine, m)])


@pytest.mark.parametrize("name", BACKENDS)
def test_low_precision_lasts_for_the_block_only(name):
    import numpy as np

    from parity.io.weights import random_weights, set_weights
    from parity.spec import make_spec

    spec = make_spec("resnet18", widths=(8, 16, 32, 64), stem_width=8, num_classes=10, layers=(1, 1, 1, 1))
    side = adapter_named(name)
    model = side.build(spec)
    set_weights(model, random_weights(spec, 0))
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    before = side.run_stages(model, x)["logits"]
    assert set(side.LOW_PRECISION) == {"bf16", "fp16"}
    with side.low_precision(model, "bf16") as low:
        out = side.run_stages(low, x)["logits"]
        unit = side.run_unit(low, "layer1.0", side.run_stages(low, x)["stem"])
    assert out.dtype == unit.dtype == np.float32  # numpy has no bf16: given back as float32
    assert 2**-10 < np.abs(out - before).max() / np.abs(before).max() < 0.1  # computed in bf16 inside
    assert side.dtype_of(model) == "float32" and np.array_equal(side.run_stages(model, x)["logits"], before)
