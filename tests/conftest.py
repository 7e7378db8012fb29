"""Shared fixtures: models are costly to build, so tests share them where they do not mutate."""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from parity.spec import make_spec

TORCHVISION_TRAINABLE = {
    # torchvision.models.resnetXX(): sum(p.numel() for p in m.parameters()), from its model cards.
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


def run_python(code: str, env: dict[str, str] | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run a snippet in a fresh interpreter (for import hygiene and other Keras backends)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env,
                          timeout=timeout)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def spec18():
    return make_spec("resnet18")


@pytest.fixture(scope="session")
def spec50():
    return make_spec("resnet50")


@pytest.fixture(scope="module", autouse=True)
def release_memory_between_modules():
    """Give memory back to the OS after each test module.

    An xdist worker runs module after module; without this, what one module freed stays in the
    process's heap (glibc keeps freed pages) and Keras keeps its graphs, so a worker's peak is the sum
    of its modules' high-water marks: 4.9 GB measured for lessons followed by train, above the 4 GB
    per worker CI allows.
    """
    yield
    import ctypes
    import gc

    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
