"""What this process may really use: CPUs (affinity mask and cgroup CPU quota, as in containers and CI) and
memory (MemAvailable, capped by a cgroup memory limit)."""

from __future__ import annotations

import math
import os
from pathlib import Path

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")
"""Environment variables torch (OpenMP, MKL), numpy's BLAS and TensorFlow read for their thread pools at start."""


def available_cpus() -> int:
    """CPUs this process may run on: the affinity mask, capped by a cgroup v2 (`cpu.max`) or v1 CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(count, math.floor(quota)) if quota else count)


def _cgroup_quota() -> float | None:
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def limit_threads(count: int) -> None:
    """Ask every framework started after this call for `count` threads (environment variables they read
    at start; a framework already loaded keeps its pools)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"


_configured: list[int] = []


def configure(count: int) -> None:
    """This process computes with `count` threads: set now for frameworks not yet started (environment), and
    applied by each backend adapter when it loads its framework (`parity.backends.<name>`)."""
    if count < 1:
        raise ValueError(f"--threads must be >= 1, got {count}")
    _configured[:] = [count]
    limit_threads(count)


def configured() -> int | None:
    """The thread count `configure` set in this process (None: the frameworks' own defaults)."""
    return _configured[0] if _configured else None


def requested() -> int | None:
    """The thread count asked for in this process: `configure`d, else the OMP_NUM_THREADS it started with."""
    if _configured:
        return _configured[0]
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def available_memory() -> int | None:
    """Bytes of memory available to this process now (None where the system does not say)."""
    found = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max" and found is not None:
            found = min(found, int(limit) - used)
    except (OSError, ValueError):
        pass
    return found
