"""Torch threads on a shared machine: one thread against all, interleaved in one process, quiet and busy.

`python benchmarks/threads.py [--arch resnet18] [--batch 2] [--size 64] [--rounds 15]` prints the median
ms per inference batch at 1 thread and at every available CPU, measured in alternation (so both see the
same machine), first on a quiet machine, then with one core kept busy by a spinning child process (what
another job, or a second test worker, does to a 2-core runner). `--threads N` exists for this: OpenMP
threads that outnumber the free cores stall each other.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

import numpy as np

from parity.backends import adapter_named
from parity.core.threads import available_cpus
from parity.io.weights import random_weights, set_weights
from parity.spec import make_spec


def spin(stop: multiprocessing.Event) -> None:
    while not stop.is_set():
        pass


def measure(step, threads: list[int], rounds: int) -> dict[int, float]:
    torch_side = adapter_named("torch")
    times: dict[int, list[float]] = {n: [] for n in threads}
    for _ in range(rounds):
        for n in threads:  # interleaved: each round times every setting once
            torch_side.set_threads(n)
            step()  # one untimed run after a change of pool size
            start = time.perf_counter()
            step()
            times[n].append(time.perf_counter() - start)
    return {n: statistics.median(v) * 1e3 for n, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    spec = make_spec(args.arch)
    side = adapter_named("torch")
    model = side.build(spec)
    set_weights(model, random_weights(spec, 0))
    x = np.random.default_rng(0).standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32)
    step = side.inference_step(model, x, "eager")
    cpus = available_cpus()
    threads = sorted({1, cpus})
    print(f"{args.arch}, batch {args.batch}, {args.size}x{args.size}, torch eager; {cpus} CPUs available")
    quiet = measure(step, threads, args.rounds)
    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        busy = measure(step, threads, args.rounds)
    finally:
        stop.set()
        spinner.join()
    for label, found in (("quiet", quiet), ("one core busy", busy)):
        cells = ", ".join(f"{n} thread{'s' if n > 1 else ''} {ms:.1f} ms" for n, ms in found.items())
        ratio = found[cpus] / found[1] if cpus > 1 else 1.0
        print(f"{label:14} {cells}; {cpus} threads / 1 thread = {ratio:.2f}x the time")


if __name__ == "__main__":
    main()
