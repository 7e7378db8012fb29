"""`resnet-parity train`: train one backend or both from the same weights on the same batches;
`--nproc N` runs it under torchrun (DDP), `--devices N` over N Keras devices (JAX)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from parity.cli import options, output

# Options that set a `TrainConfig` field default to "not given" (SUPPRESS): a new run takes TrainConfig's
# defaults, a resumed one (`--resume --out RUN`) the settings stored in RUN/run.json.
UNSET = argparse.SUPPRESS


def add_arguments(p: argparse.ArgumentParser) -> None:
    from parity.io.data import NORMALISATIONS
    from parity.spec import OPTIMIZERS
    from parity.training.config import TrainConfig

    d = TrainConfig(data="")  # the defaults, said in each help text
    p.add_argument("--data", default=UNSET, help="'digits' (bundled), 'cifar10:PATH' or an ImageFolder path")
    options.add_arch(p, default=UNSET, help=f"default {d.arch}")
    options.add_spec_shape(p)
    options.add_backend(p, default=UNSET, both=True, help="default both")
    p.add_argument("--epochs", type=options.positive, default=UNSET, help=f"default {d.epochs}")
    p.add_argument("--batch", type=options.positive, default=UNSET, help=f"global batch, default {d.batch}")
    p.add_argument("--lr", type=float, default=UNSET, help=f"default {d.lr}")
    p.add_argument("--optimizer", default=UNSET, choices=list(OPTIMIZERS), help=f"default {d.optimizer}")
    p.add_argument(
        "--momentum", type=float, default=UNSET, help=f"SGD momentum (torch's convention), default {d.momentum}"
    )
    p.add_argument(
        "--weight-decay",
        type=float,
        default=UNSET,
        help=f"coupled L2, as torch's weight_decay, default {d.weight_decay}",
    )
    p.add_argument(
        "--size", type=options.positive, default=UNSET, help=f"images resized to size x size, default {d.size}"
    )
    p.add_argument(
        "--normalise",
        default=UNSET,
        choices=list(NORMALISATIONS),
        help="ImageNet mean/std (default), or (x - 0.5) / 0.5",
    )
    p.add_argument(
        "--crop-padding",
        type=options.non_negative,
        default=UNSET,
        help="training augmentation: pad, then random-crop back to size (default 0: off)",
    )
    p.add_argument("--flip", action="store_true", default=UNSET, help="training augmentation: random horizontal flip")
    p.add_argument("--seed", type=options.non_negative, default=UNSET, help=f"default {d.seed}")
    p.add_argument(
        "--device", type=options.device, default=UNSET, help="torch device (cpu, cuda, cuda:1); Keras places itself"
    )
    options.add_keras_backend(p)
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in RUN_DIR from its last complete epoch, with the settings in RUN_DIR/run.json "
        "(options given again must agree; --epochs may grow)",
    )
    p.add_argument(
        "--nproc",
        type=options.positive,
        default=1,
        help="torch: data parallel over N processes on this machine (starts torchrun; DDP, gloo on CPU, "
        "NCCL on GPUs); --batch stays the global batch",
    )
    p.add_argument(
        "--devices",
        type=options.positive,
        default=UNSET,
        help="Keras: data parallel over N devices in this process (keras.distribution, JAX backend)",
    )
    p.add_argument(
        "--sync-bn",
        action="store_true",
        default=UNSET,
        help="torch under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm, CUDA)",
    )


def _fields() -> tuple[str, ...]:
    from parity.training.config import TrainConfig

    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("spec", "backends"))


def config_from_args(args: argparse.Namespace) -> Any:
    """The TrainConfig of the options given, over run.json's settings with --resume, else over the defaults."""
    from parity.backends import BACKENDS
    from parity.training.config import TrainConfig
    from parity.training.run_dir import stored_config

    # Every TrainConfig field but spec and backends is an option of the same name.
    given = {name: getattr(args, name) for name in _fields() if hasattr(args, name)}
    if hasattr(args, "backend"):
        given["backends"] = list(BACKENDS) if args.backend == "both" else [args.backend]
    overrides = options.overrides_from_args(args)
    for field in ("num_classes", "in_channels"):
        if field in overrides:
            raise ValueError(f"--set {field}: train takes it from the data (classes, RGB images)")
    if args.resume and not (Path(args.out) / "run.json").is_file():
        raise FileNotFoundError(f"--resume: no run at {args.out} (no run.json in it)")
    base = stored_config(Path(args.out)) if args.resume else {}
    if overrides:
        given["spec"] = {**base.get("spec", {}), **overrides}
    settings = {**base, **given}
    if "data" not in settings:
        raise ValueError("--data is required (or --resume --out RUN_DIR, which reads it from RUN_DIR/run.json)")
    return TrainConfig(**settings)


def run(args: argparse.Namespace) -> int:
    from parity.training.trainer import train

    options.select_keras_backend(args.keras_backend)
    config = config_from_args(args)
    if args.nproc > 1:
        return _launch_torchrun(args, config)
    if config.devices > 1:
        from parity.training.distributed import host_devices_flag

        host_devices_flag(config.devices)  # before JAX starts: CPU-only machines get N CPU devices
    run = train(config, args.out, resume=args.resume, console=output.console())
    if any(run.history.values()):  # under torchrun only process 0 has the history
        best = {b: max(r["val_acc"] for r in rows) for b, rows in run.history.items()}
        output.console().print(
            f"best validation accuracy: {', '.join(f'{b} {a:.2%}' for b, a in best.items())}; run directory {run.out}"
        )
    return 0


def _launch_torchrun(args: argparse.Namespace, config: Any) -> int:
    """`train --nproc N`: check what can be checked here, then run the same command under torchrun."""
    from parity.training.distributed import check_divisible, launch, without_option
    from parity.training.run_dir import prepare_run_dir

    if config.backends != ("torch",):
        raise ValueError(
            f"--nproc {args.nproc} trains the torch backend in {args.nproc} torchrun processes; "
            "add --backend torch (Keras spreads over devices with --devices N)"
        )
    check_divisible(config.batch, args.nproc, "processes")
    if config.sync_bn:
        from parity.backends import adapter_named

        adapter_named("torch").data_parallel().check_sync_bn(config.device)
    created = not Path(args.out).exists()
    prepare_run_dir(Path(args.out), config, args.resume)  # refuses an existing run or changed settings now
    launch(args.nproc, without_option(args.argv, "--nproc"), Path(args.out), created)
    return 0
