"""Training throughput per process count (torch DDP) and per device count (Keras on JAX), one run each.

    python benchmarks/scaling.py [--epochs 2] [--counts 1,2] [--set widths=32,64,128,256]

Runs `resnet-parity train` on the bundled digits (narrow resnet18, cifar stem, 32x32, global batch 64)
as a user would; images/s are from each run's history (the last epoch: the first one compiles). On a
CPU machine N processes split the cores between them (torchrun sets 1 thread each), so this measures
the engine's overhead there; on N GPUs it measures scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ARGS = [
    "--data",
    "digits",
    "--arch",
    "resnet18",
    "--stem",
    "cifar",
    "--size",
    "32",
    "--normalise",
    "half",
    "--batch",
    "64",
    "--lr",
    "0.05",
]


def run(backend: str, count: int, epochs: int, extra: list[str], folder: Path) -> dict:
    out = folder / f"{backend}-{count}"
    env = dict(os.environ)
    flag = []
    if backend == "torch" and count > 1:
        flag = ["--nproc", str(count)]
    if backend == "keras":
        env["KERAS_BACKEND"] = "jax"
        env.pop("XLA_FLAGS", None)
        flag = ["--devices", str(count)] if count > 1 else []
    subprocess.run(
        [
            sys.executable,
            "-m",
            "parity.cli",
            "train",
            *ARGS,
            *extra,
            "--backend",
            backend,
            *flag,
            "--epochs",
            str(epochs),
            "--out",
            str(out),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    return json.loads((out / backend / "history.json").read_text())[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--counts", default="1,2")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    extra = [a for s in args.set for a in ("--set", s)] or ["--set", "widths=32,64,128,256", "--set", "stem_width=32"]
    counts = [int(c) for c in args.counts.split(",")]
    print(
        f"{os.cpu_count()} CPUs; resnet18 (cifar stem, {' '.join(extra[1::2])}) on digits 32x32, global batch 64, "
        f"last of {args.epochs} epochs"
    )
    print(f"{'backend':8} {'engine':44} {'count':>5} {'img/s':>8} {'vs 1':>6} {'val acc':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for backend in ("torch", "keras"):
            base = None
            for count in counts:
                row = run(backend, count, args.epochs, extra, Path(folder))
                base = base or row["images_per_s"]
                engine = (
                    ("one process" if count == 1 else "DistributedDataParallel (gloo), processes")
                    if backend == "torch"
                    else ("JAX, one device" if count == 1 else "keras.distribution.DataParallel, devices")
                )
                print(
                    f"{backend:8} {engine:44} {count:>5} {row['images_per_s']:>8.1f} "
                    f"{row['images_per_s'] / base:>6.2f} {row['val_acc']:>8.2%}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
