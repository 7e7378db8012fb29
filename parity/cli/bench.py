"""`resnet-parity bench`: every runtime side by side on one model, weights and batch, in one run."""

from __future__ import annotations

import argparse
import json

from parity.cli import options, output


def _runtime_list(text: str) -> list[str]:
    from parity.checks.bench import RUNTIMES

    names = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in names if r not in RUNTIMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown runtime(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"use a comma list of {', '.join(RUNTIMES)}"
        )
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_arch(p, default="resnet50")
    p.add_argument("--batch", type=options.positive, default=8)
    options.add_size(p, default=224)
    p.add_argument(
        "--runtimes",
        type=_runtime_list,
        default=None,
        metavar="A,B",
        help="comma list of framework runtimes and training steps (default: all of them and onnxruntime; with "
        "--runtime: torch,keras-tf); see parity.checks.bench.RUNTIMES",
    )
    options.add_runtime(p, "also time these deployment runtimes on each model they take, asked for fp32")
    options.add_precision(
        p, "also time torch, Keras-on-TF and the deployment runtimes in bf16, fp16 or int8, beside fp32", data=False
    )
    p.add_argument("--warmup", type=options.non_negative, default=2)
    p.add_argument("--repeats", type=options.positive, default=5)
    p.add_argument(
        "--sgemm-size", type=options.positive, default=2048, help="matrix size of the SGEMM peak measurement"
    )
    options.add_spec_overrides(p)
    options.add_json(p)
    p.add_argument("--plot", metavar="PNG", help="bar chart of images/s")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.checks.bench import BASELINES, deployed, run_bench
    from parity.checks.bench_plot import plot_bench
    from parity.core.files import atomic_write_text, check_target

    for path in (args.json, args.plot):
        if path:
            check_target(path, force=True)
    err = output.console(stderr=True)
    chosen = args.runtimes
    if args.runtime:
        chosen = list(dict.fromkeys([*(args.runtimes or BASELINES), *deployed(args.runtime)]))
    result = run_bench(
        args.arch,
        args.batch,
        args.size,
        chosen,
        args.warmup,
        args.repeats,
        progress=lambda name: err.print(f"timing {name} ...", markup=False),
        sgemm_size=args.sgemm_size,
        spec=options.spec_from_args(args.arch, args),
        precision=args.precision,
    )
    table = Table(
        title=f"{result.arch}, batch {result.batch}, {result.size}x{result.size}, fp32"
        + (f" and {result.precision} (vs fp32: interleaved in this run)" if result.precision != "fp32" else "")
        + f", {result.device}, "
        f"{result.threads} threads; {result.gflop_per_image:.2f} GFLOP per image; "
        f"SGEMM peak {result.sgemm_peak_gflops:.0f} GFLOP/s (measured now)"
    )
    for column in ("runtime", "kind", "ms/batch", "images/s", "GFLOP/s", "of peak", "vs fp32", "note"):
        table.add_column(column, justify="left" if column in ("runtime", "kind", "note") else "right")
    for t in result.timings:
        if t.skipped:
            table.add_row(t.runtime, t.kind, "-", "-", "-", "-", "-", f"skipped: {t.skipped}")
        else:
            table.add_row(
                t.runtime,
                t.kind,
                f"{t.ms_per_batch:.1f}",
                f"{t.images_per_s:.1f}",
                f"{t.gflops:.0f}",
                f"{t.of_peak:.0%}",
                "-" if t.speedup is None else f"{t.speedup:.2f}x",
                t.note,
            )
    output.console().print(table)
    if args.json:
        atomic_write_text(args.json, json.dumps(result.to_dict(), indent=1))
    if args.plot:
        plot_bench(result, args.plot)
    return 0
