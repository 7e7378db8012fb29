"""What this process may really use: CPUs (affinity mask and cgroup CPU quota, as in containers and CI, less the
ones other processes keep busy) and memory (MemAvailable, capped by a cgroup memory limit).

Threads on a shared machine (`python benchmarks/threads.py`, 2 cores, README "Threads"): OpenMP threads that
outnumber the free cores stall each other, and torch's libgomp makes it far worse by spinning while it waits
(a training step of 32 ms alone took 2.8 s beside another torch job, 50x one thread's time). So the default
count is the CPUs free when the command starts, and threads sleep when they wait (OMP_WAIT_POLICY=PASSIVE),
which bounds what a job started later can do to this one.
"""

from __future__ import annotations

import math
import os
import time
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


def _cpu_times(cpus: set[int]) -> dict[int, tuple[int, int]]:
    """(busy, total) clock ticks so far of each CPU in `cpus`, from /proc/stat."""
    found = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
            found[int(name[3:])] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))
    return found


def busy_cpus(seconds: float = 0.2) -> float | None:
    """How many of the CPUs this process may run on other processes keep busy, over `seconds` (this process
    sleeps meanwhile, so the work counted is someone else's); None where the system does not say (not Linux)."""
    try:
        cpus = os.sched_getaffinity(0)
        first = _cpu_times(cpus)
        time.sleep(seconds)
        second = _cpu_times(cpus)
    except (AttributeError, OSError, ValueError):
        return None
    busy = sum(second[c][0] - first[c][0] for c in first if c in second)
    total = sum(second[c][1] - first[c][1] for c in first if c in second)
    return len(first) * busy / total if total > 0 else None


def default_threads() -> int:
    """The thread count when none is asked for: the available CPUs (`available_cpus`) less those other
    processes keep busy now, at least 1."""
    cpus = available_cpus()
    busy = busy_cpus() if cpus > 1 else None
    if busy is None:
        return cpus
    try:
        free = len(os.sched_getaffinity(0)) - busy
    except (AttributeError, OSError):
        return cpus
    return max(1, min(cpus, round(free)))


def limit_threads(count: int) -> None:
    """Ask every framework started after this call for `count` threads (environment variables they read
    at start; a framework already loaded keeps its pools), and OpenMP threads that sleep when they wait
    (OMP_WAIT_POLICY=PASSIVE unless set: spinning threads stall each other on a busy machine, module docstring)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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
