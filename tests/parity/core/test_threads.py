"""The default thread count on a shared machine (`parity.core.threads`; figures in benchmarks/threads.py).

A digits epoch took 80.6 s at the default 2 threads and 8.3 s at 1 beside other work: OpenMP threads spinning
while they wait for a core another process holds. The default now counts the CPUs other processes keep busy
and asks OpenMP threads to sleep while they wait.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from parity.cli import options
from parity.core import threads


def _spin(stop):
    while not stop.is_set():
        pass


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads Linux's /proc/stat")
def test_a_spinning_process_is_counted_busy():
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    spinner = context.Process(target=_spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        time.sleep(0.5)  # started and spinning
        busy = threads.busy_cpus(0.5)
    finally:
        stop.set()
        spinner.join()
    assert busy is not None and busy >= 0.7, busy  # most of one CPU at least (another test worker may add more)


@pytest.mark.parametrize(
    "cpus,busy,expected",
    [(2, 0.1, 2), (2, 0.9, 1), (2, 1.8, 1), (2, None, 2), (8, 2.6, 5), (8, 7.9, 1), (1, 0.0, 1)],
)
def test_the_default_leaves_the_busy_cpus_to_their_processes(cpus, busy, expected, monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: cpus)
    monkeypatch.setattr(threads, "busy_cpus", lambda seconds=0.2: busy)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert threads.default_threads() == expected


def test_no_threads_option_uses_the_default_and_openmp_threads_sleep_when_they_wait(monkeypatch):
    import argparse

    for name in (*threads.THREAD_VARIABLES, "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_configured", [])
    monkeypatch.setattr(threads, "busy_cpus", lambda seconds=0.2: 1.9)  # another job holds both cores
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert options.apply_threads(argparse.Namespace(threads=None)) == 1
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice stands
    assert options.apply_threads(argparse.Namespace(threads=2)) == 2 and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
