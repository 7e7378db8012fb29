"""`resnet-parity train`: train one backend or both from the same weights on the same batches;
`--nproc N` runs it under torchrun (DDP), `--devices N` over N Keras devices (JAX)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from parity.cli import options

HELP = "train the torch model, the Keras model or both (same weights, same batches)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from parity.backends import BACKENDS
    from parity.io.data import NORMALISATIONS
    from parity.spec import OPTIMIZERS

    p.add_argument("--data", required=True, help="'digits' (bundled), 'cifar10:PATH' or an ImageFolder path")
    options.add_arch(p, default="resnet18")
    options.add_spec_overrides(p, variant=False)
    p.add_argument("--backend", default="both", choices=[*BACKENDS, "both"])
    p.add_argument("--epochs", type=options.positive, default=10)
    p.add_argument("--batch", type=options.positive, default=32)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--optimizer", default="sgd", choices=list(OPTIMIZERS))
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (torch's convention)")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="coupled L2, as torch's weight_decay")
    options.add_size(p, default=32, help="images are resized to size x size")
    p.add_argument(
        "--normalise", default="imagenet", choices=list(NORMALISATIONS), help="ImageNet mean/std, or (x - 0.5) / 0.5"
    )
    p.add_argument(
        "--crop-padding",
        type=options.non_negative,
        default=0,
        help="training augmentation: pad, then random-crop back to size (0: off)",
    )
    p.add_argument("--flip", action="store_true", help="training augmentation: random horizontal flip")
    options.add_seed(p, default=0)
    options.add_device(p, help="torch device (cpu, cuda, cuda:1); Keras places itself")
    options.add_keras_backend(p)
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last complete epoch")
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
        default=1,
        help="Keras: data parallel over N devices in this process (keras.distribution, JAX backend)",
    )
    p.add_argument(
        "--sync-bn",
        action="store_true",
        help="torch under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm, CUDA)",
    )


def run(args: argparse.Namespace) -> int:
    from parity.training.trainer import TrainConfig, train

    options.select_keras_backend(args.keras_backend)
    overrides = options.overrides_from_args(args)
    for field in ("num_classes", "in_channels"):
        if field in overrides:
            raise ValueError(
                f"--{field.replace('_', '-')} / --set {field}: train takes it from the data (classes, RGB images)"
            )
    from parity.backends import BACKENDS

    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    config = TrainConfig(
        data=args.data,
        arch=args.arch,
        spec=overrides,
        backends=backends,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        optimizer=args.optimizer,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        size=args.size,
        seed=args.seed,
        device=args.device,
        normalise=args.normalise,
        crop_padding=args.crop_padding,
        flip=args.flip,
        devices=args.devices,
        sync_bn=args.sync_bn,
    )
    if args.nproc > 1:
        return _launch_torchrun(args, config)
    if args.devices > 1:
        from parity.training.distributed import host_devices_flag

        host_devices_flag(args.devices)  # before JAX starts: CPU-only machines get N CPU devices
    run = train(config, args.out, resume=args.resume, console=options.console())
    if any(run.history.values()):  # under torchrun only process 0 has the history
        best = {b: max(r["val_acc"] for r in rows) for b, rows in run.history.items()}
        options.console().print(
            f"best validation accuracy: {', '.join(f'{b} {a:.2%}' for b, a in best.items())}; run directory {run.out}"
        )
    return 0


def _launch_torchrun(args: argparse.Namespace, config: Any) -> int:
    """`train --nproc N`: check what can be checked here, then run the same command under torchrun."""
    from parity.training.distributed import check_divisible, launch, without_option
    from parity.training.trainer import prepare_run_dir

    if config.backends != ("torch",):
        raise ValueError(
            f"--nproc {args.nproc} trains the torch backend in {args.nproc} torchrun processes; "
            "add --backend torch (Keras spreads over devices with --devices N)"
        )
    check_divisible(config.batch, args.nproc, "processes")
    if config.sync_bn:
        from parity.backends import adapter_named

        adapter_named("torch").data_parallel().check_sync_bn(config.device)
    prepare_run_dir(Path(args.out), config, args.resume)  # refuses an existing run or changed settings now
    launch(args.nproc, without_option(args.argv, "--nproc"), Path(args.out))
    return 0
