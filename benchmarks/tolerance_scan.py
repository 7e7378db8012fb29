"""Measure the fp32 noise floor between the torch and Keras ports (the basis of FP32_CPU).

Runs every architecture at several input sizes and seeds, prints each run's per-stage relative
difference and the worst per stage. Usage:

    python benchmarks/tolerance_scan.py [--arch all] [--sizes 2x64x64,2x224x224,1x97x131] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from parity.check import check_arch  # noqa: E402
from parity.spec import parse_archs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="all")
    parser.add_argument("--sizes", default="2x64x64,2x224x224,1x97x131", help="BxHxW list")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    worst: dict[str, tuple[float, str]] = {}
    for arch in parse_archs(args.arch):
        for size in args.sizes.split(","):
            batch, height, width = (int(v) for v in size.split("x"))
            for seed in range(args.seeds):
                result = check_arch(arch, batch, height, width, args.device, seed)
                figures = " ".join(f"{s.stage}={s.max_rel:.2e}" for s in result.report.stages)
                print(f"{arch:9s} {size:10s} seed {seed}  {figures}", flush=True)
                for s in result.report.stages:
                    if s.max_rel > worst.get(s.stage, (0.0, ""))[0]:
                        worst[s.stage] = (s.max_rel, f"{arch} {size} seed {seed}")
    print("worst max_rel per stage:")
    for stage, (value, where) in worst.items():
        print(f"  {stage:7s} {value:.2e}  ({where})")


if __name__ == "__main__":
    main()
