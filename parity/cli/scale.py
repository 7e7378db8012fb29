"""`resnet-parity scale`: N processes (torch DDP) or devices (Keras on JAX) against one, after every SGD step."""

from __future__ import annotations

import argparse
import json

from parity.cli import options, output
from parity.core.formatting import fmt_sci


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_backend(p, default="both", both=True)
    p.add_argument("--nproc", type=options.positive, default=2, help="torch: DDP processes (torchrun, gloo on CPU)")
    p.add_argument(
        "--devices", type=options.positive, default=2, help="Keras: JAX devices (CPU devices on a CPU machine)"
    )
    options.add_arch(p, default="resnet18")
    options.add_spec_overrides(p, variant=False)
    p.add_argument("--steps", type=options.positive, default=3)
    p.add_argument("--batch", type=options.positive, default=8, help="global batch")
    options.add_size(p, default=16)
    p.add_argument("--lr", type=float, default=0.1)
    options.add_seed(p, default=0)
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--sync-bn", action="store_true", help="torch: SyncBatchNorm (CUDA): compare with the global batch")
    options.add_device(p, help="torch device (cpu or cuda)")
    p.add_argument(
        "--keras-backend",
        choices=["jax"],
        default=None,
        help="the Keras side runs on JAX (keras.distribution is JAX-only; in a child process when this one "
        "runs another backend)",
    )
    options.add_json(p)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.core.files import atomic_write_text, check_target
    from parity.training.scale import ScaleConfig, check_scale

    options.select_keras_backend(args.keras_backend)
    if args.json:
        check_target(args.json, force=True)
    backends = ["torch", "keras"] if args.backend == "both" else [args.backend]
    if "keras" in backends:
        import importlib.util

        from parity.core.provenance import keras_backend

        if importlib.util.find_spec("jax") is None:  # before the torch part runs: nothing of it would be shown
            raise ValueError(
                "the Keras scale check runs Keras on JAX (keras.distribution is JAX-only), and jax is not installed: "
                "pip install 'resnet-parity[jax]', or --backend torch"
            )

        if keras_backend() != "jax":  # said, not silent: the check itself runs in a JAX child process
            output.console(stderr=True).print(
                f"keras: keras.distribution runs on JAX only; the Keras scale check runs in a JAX process "
                f"(this one would use {keras_backend()})",
                markup=False,
            )
    spec = {**ScaleConfig().spec, **options.overrides_from_args(args)}
    configs = {
        b: ScaleConfig(
            arch=args.arch,
            spec=spec,
            parts=args.nproc if b == "torch" else args.devices,
            steps=args.steps,
            batch=args.batch,
            size=args.size,
            lr=args.lr,
            seed=args.seed,
            dtype=args.dtype,
            sync_bn=args.sync_bn,
            device=args.device,
        )
        for b in backends
    }
    console, err = output.console(), output.console(stderr=True)
    reports = []
    for backend, config in configs.items():
        err.print(f"{backend}: {config.parts} {'processes' if backend == 'torch' else 'devices'} ...", markup=False)
        report = check_scale(backend, config)
        reports.append(report)
        table = Table(
            title=f"{report.engine}: {report.parts} {'processes' if backend == 'torch' else 'devices'} "
            f"against {report.expected}; {config.arch} {config.dtype}, global batch {config.batch} "
            f"of {config.size}x{config.size}, SGD lr {config.lr}"
        )
        for column in ("step", "worst rel. diff", "in", "weights: distance to global batch", "BN statistics: distance"):
            table.add_column(column, justify="left" if column == "in" else "right")
        for step, (w, key, g, b) in enumerate(
            zip(report.worst, report.worst_tensor, report.global_weights, report.global_stats), 1
        ):
            table.add_row(str(step), fmt_sci(w), key, fmt_sci(g), fmt_sci(b))
        console.print(table)
        verdict, sign = ("PASS", "<=") if report.passed else ("FAIL", ">")
        console.print(
            f"{backend}: {verdict} (worst {fmt_sci(max(report.worst))} {sign} {report.tolerance_name} "
            f"{fmt_sci(report.tolerance)})",
            markup=False,
        )
    if args.json:
        atomic_write_text(args.json, json.dumps([r.to_dict() for r in reports], indent=1))
    return 0 if all(r.passed for r in reports) else 1
