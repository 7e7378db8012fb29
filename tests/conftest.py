"""Shared fixtures: models are costly to build, so tests share them where they do not mutate."""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _threads_per_worker() -> int:
    """The CPUs this process may use, shared by the xdist workers (PYTEST_XDIST_WORKER_COUNT)."""
    from parity.core.threads import available_cpus

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, available_cpus() // workers)


# Before any framework starts: workers that each start torch, TensorFlow and OpenBLAS with every core
# oversubscribe the machine, and OpenMP threads that outnumber free cores stall each other.
# Only in xdist workers (the controller runs no test); a run without xdist keeps the frameworks' defaults.
if os.environ.get("PYTEST_XDIST_WORKER"):
    from parity.core.threads import limit_threads

    limit_threads(_threads_per_worker())

import numpy as np  # noqa: E402 - after the thread settings above
import pytest  # noqa: E402

from parity.spec import make_spec  # noqa: E402

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
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def spec18():
    return make_spec("resnet18")


@pytest.fixture(scope="session")
def spec50():
    return make_spec("resnet50")


def _give_back_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc keeps them otherwise)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        return 0


HOLDING_A_LOT = 1.5e9
"""After a test, a worker resident above this, and grown since its last trim, gives memory back."""
GROWN = 0.25e9
_trimmed_at = [0]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """An xdist worker runs module after module, and the deep float64 tests (resnet152 in both backends)
    free gigabytes the heap keeps; trimming after such a test keeps the next one from stacking on it
    (test_localise.py: 3.61 -> 3.25 GB peak). Only when the worker holds a lot and has grown since the
    last trim: a gc pass and a trim after every test would cost more time than they save memory."""
    resident = _resident_bytes()
    if resident > max(HOLDING_A_LOT, _trimmed_at[0] + GROWN):
        _give_back_memory()
        _trimmed_at[0] = _resident_bytes()


@pytest.fixture(scope="module", autouse=True)
def release_memory_between_modules():
    """Give memory back to the OS after each test module.

    Without this, what one module freed stays in the process's heap and Keras keeps its graphs, so a
    worker's peak is the sum of its modules' high-water marks (4.9 GB measured for lessons followed
    by train, above the 4 GB per worker CI allows). `check`'s calibrated-weights cache goes too.
    """
    yield
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session()
    check = sys.modules.get("parity.checks.check")
    if check is not None:
        check._calibrated.cache_clear()
    _give_back_memory()
