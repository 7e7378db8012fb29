"""Torch threads on a shared machine: 1 thread against every CPU, OpenMP spin-waiting or not, quiet and busy.

`python benchmarks/threads.py [--seconds 1] [--rounds 8] [--loads quiet,torch,tensorflow,spin]` keeps one
process per setting alive (each started with its own environment: OpenMP reads OMP_WAIT_POLICY when torch
loads) and asks them in turn, round after round, for the median time of one step over a short window, so
every setting sees the same machine. Two steps, as the commands run them: a training step (resnet18 with the
CIFAR stem, widths 16-128, batch 32 of 16x16, as `train --data digits`) and an inference batch (resnet18,
batch 2, 64x64, as `check`). Four machines: quiet; another job doing torch inference with torch's defaults
(every CPU, OpenMP spinning); a TensorFlow job (Keras training steps, TensorFlow's default threads); one core
kept busy by a spinning process. Prints the median over rounds of each setting's median, and the ratio to
1 thread; `--json F` writes every round.

The settings: 1 thread; every CPU with libgomp's default wait (threads spin up to GOMP_SPINCOUNT, 300,000
iterations, before they sleep); every CPU with OMP_WAIT_POLICY=PASSIVE (they sleep at once); and what `resnet-parity` does
with no --threads (`parity.cli.options.apply_threads`: PASSIVE, and the CPUs it finds free when it starts; the
competing job starts first, the settings' processes one at a time after it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TRAIN_SPEC = {"stem": "cifar", "widths": (16, 32, 64, 128), "stem_width": 16, "num_classes": 10}


def _step(side: Any, kind: str) -> Any:
    import numpy as np

    from parity.io.weights import random_weights, set_weights
    from parity.spec import make_spec

    rng = np.random.default_rng(0)
    if kind == "train":
        spec = make_spec("resnet18", **TRAIN_SPEC)
        model = side.build(spec)
        set_weights(model, random_weights(spec, 0))
        optimizer = side.make_optimizer(model, "sgd", 0.01)
        images = rng.standard_normal((32, 3, 16, 16)).astype(np.float32)
        labels = np.arange(32) % 10
        return lambda: side.train_step(model, optimizer, images, labels)
    spec = make_spec("resnet18")
    model = side.build(spec)
    set_weights(model, random_weights(spec, 0))
    return side.inference_step(model, rng.standard_normal((2, 3, 64, 64)).astype(np.float32), "eager")


def _setting(env: dict[str, str], threads: int | None, kind: str, conn: Any) -> None:
    """One measured process: told a window in seconds, answers the median step time (ms) in it.

    `threads` None: what `resnet-parity` does with no --threads (`parity.cli.options.apply_threads`).
    """
    os.environ.update(env)  # before torch loads libgomp, which reads it once
    if threads is None:
        from parity.cli.options import apply_threads

        threads = apply_threads(argparse.Namespace(threads=None))
    from parity.backends import adapter_named

    side = adapter_named("torch")
    side.set_threads(threads)
    step = _step(side, kind)
    step()
    conn.send(threads)
    while (window := conn.recv()) is not None:
        step()  # the first step after a pause wakes the pool
        times, end = [], time.perf_counter() + window
        while time.perf_counter() < end or len(times) < 3:
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        conn.send(statistics.median(times) * 1e3)


def _load(kind: str, stop: Any) -> None:
    """A competing job, running until `stop` is set."""
    if kind == "spin":
        while not stop.is_set():
            pass
        return
    if kind == "tensorflow":
        os.environ["KERAS_BACKEND"] = "tensorflow"
        from parity.core.logs import quiet_imports

        with quiet_imports():
            from parity.backends import adapter_named

            side = adapter_named("keras")
        step = _step(side, "train")
    else:  # another torch job with torch's own defaults
        from parity.backends import adapter_named

        step = _step(adapter_named("torch"), "inference")
    while not stop.is_set():
        step()


def measure(kind: str, load: str, settings: dict[str, tuple[dict[str, str], int | None]], rounds: int, seconds: float):
    """Every round's median ms per setting, and the threads each setting's process used."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    competitor = None
    if load != "quiet":  # first: the default setting counts the CPUs it finds busy when it starts
        competitor = context.Process(target=_load, args=(load, stop), daemon=True)
        competitor.start()
        time.sleep(8 if load == "tensorflow" else 3)  # its framework loaded and stepping
    workers, used = {}, {}
    for name, (env, threads) in settings.items():  # one at a time: the others wait, asleep
        parent, child = context.Pipe()
        process = context.Process(target=_setting, args=(env, threads, kind, child), daemon=True)
        process.start()
        workers[name] = (process, parent)
        used[name] = parent.recv()
    found: dict[str, list[float]] = {name: [] for name in settings}
    try:
        for _ in range(rounds):
            for name, (_, parent) in workers.items():  # interleaved: each round times every setting once
                parent.send(seconds)
                found[name].append(parent.recv())
    finally:
        stop.set()
        for process, parent in workers.values():
            parent.send(None)
            process.join()
        if competitor is not None:
            competitor.join()
    return found, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="window per setting per round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--loads", default="quiet,torch,tensorflow,spin")
    parser.add_argument("--steps", default="train,inference")
    parser.add_argument("--json", help="write every round's figures here")
    args = parser.parse_args()
    from parity.core.threads import available_cpus

    cpus = available_cpus()
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):  # each setting's process starts from libgomp's defaults
        os.environ.pop(name, None)
    settings = {
        "1 thread": ({}, 1),
        f"{cpus} threads, spinning": ({}, cpus),
        f"{cpus} threads, PASSIVE": ({"OMP_WAIT_POLICY": "PASSIVE"}, cpus),
        "resnet-parity's default": ({}, None),
    }
    loads = {
        "quiet": "quiet",
        "torch": f"another torch job ({cpus} threads, spinning)",
        "tensorflow": "a TensorFlow job (Keras training)",
        "spin": "one core kept busy",
    }
    print(f"torch, {cpus} CPUs available; median ms per step over {args.rounds} rounds of {args.seconds:g} s")
    print("| step | machine | " + " | ".join(settings) + " |")
    print("|---" * (len(settings) + 2) + "|")
    record = []
    for kind in args.steps.split(","):
        for load in args.loads.split(","):
            found, used = measure(kind, load, settings, args.rounds, args.seconds)
            medians = {name: statistics.median(v) for name, v in found.items()}
            one = medians["1 thread"]
            cells = " | ".join(f"{ms:.1f} ({ms / one:.2f}x)" for ms in medians.values())
            chose = used["resnet-parity's default"]
            print(f"| {kind} | {loads[load]} | {cells}, {chose} thread{'s' if chose > 1 else ''} |", flush=True)
            record.append({"step": kind, "load": load, "rounds_ms": found, "threads": used})
    if args.json:
        Path(args.json).write_text(json.dumps({"cpus": cpus, "results": record}, indent=1))


if __name__ == "__main__":
    main()
