"""Measure what the parity tolerances rest on, on calibrated networks (BN statistics from data).

For every architecture, input size and seed: both backends in float64 (the port verdict's basis,
FP64), the reference's own fp32 rounding per stage (fp32 vs its float64 run), the cross-backend
fp32 difference in units of that noise (FP32_NOISE_MULTIPLE), the stem's fp32 difference (FP32_FLOOR)
and every unit alone in fp32 (FP32_UNIT). Prints each run and the worst of each figure. Usage:

    python benchmarks/tolerance_scan.py [--arch all] [--sizes 2x64x64,2x224x224,1x97x131] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from parity.checks.check import build_pair, default_weights, random_input  # noqa: E402
from parity.checks.compare import compare  # noqa: E402
from parity.io.weights import copy_weights, set_weights  # noqa: E402
from parity.spec import make_spec, parse_archs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="all")
    parser.add_argument("--sizes", default="2x64x64,2x224x224,1x97x131", help="BxHxW list")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--direction", default="both", choices=["torch2keras", "keras2torch", "both"])
    args = parser.parse_args()
    directions = ["torch2keras", "keras2torch"] if args.direction == "both" else [args.direction]
    worst: dict[str, tuple[float, str]] = {}
    noise_by_arch: dict[str, float] = {}

    def keep(key: str, value: float, where: str) -> None:
        if value > worst.get(key, (-1.0, ""))[0]:
            worst[key] = (value, where)

    for arch in parse_archs(args.arch):
        spec = make_spec(arch)
        for size in args.sizes.split(","):
            batch, height, width = (int(v) for v in size.split("x"))
            for seed in range(args.seeds):
                weights = default_weights(spec, seed, height, width)
                x = random_input(spec, batch, height, width, seed)
                for direction in directions:
                    t, k = build_pair(spec)
                    src, dst = (t, k) if direction == "torch2keras" else (k, t)
                    set_weights(src, weights)
                    copy_weights(src, dst)
                    start = time.perf_counter()
                    report = compare(src, dst, x, device=args.device)
                    seconds = time.perf_counter() - start
                    fixed = compare(src, dst, x, device=args.device, float64=False)
                    where = f"{arch} {size} seed {seed} {direction}"
                    f64 = report.port_max_rel
                    unit32 = max(fixed.blocks, key=lambda s: s.max_rel)
                    print(
                        f"{where:38s} float64 {f64:.1e}  noise logits {report.logits.noise:.1e} "
                        f"worst {max(s.noise for s in report.stages):.1e}  ratio {report.worst_ratio:.2f}  "
                        f"stem fp32 {report.stages[0].max_rel:.1e}  unit fp32 {unit32.max_rel:.1e} "
                        f"({unit32.stage})  {seconds:.1f}s (float64 pass {report.float64_seconds:.1f}s)",
                        flush=True,
                    )
                    keep("float64 (stages and units)", f64, where)
                    keep("cross / reference noise", report.worst_ratio, where)
                    keep("stem fp32 cross", report.stages[0].max_rel, where)
                    keep("unit alone fp32 cross", unit32.max_rel, where)
                    keep(f"{arch} reference noise, any stage", max(s.noise for s in report.stages), where)
                    keep(f"{arch} reference noise, logits", report.logits.noise, where)
                    noise_by_arch[arch] = max(noise_by_arch.get(arch, 0.0), report.logits.noise)
    print("worst of each figure:")
    for key, (value, where) in worst.items():
        print(f"  {key:34s} {value:.2e}  ({where})")


if __name__ == "__main__":
    main()
