"""`resnet-parity convert`: a checkpoint from one format to another (format from the extension)."""

from __future__ import annotations

import argparse

from parity.cli import options

HELP = "convert a checkpoint between .pt/.pth, .safetensors, .npz, .weights.h5 and .keras (format from the extension)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from parity.spec import PRESETS, VARIANTS

    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--arch", choices=list(PRESETS), help="architecture (default: inferred from the weights)")
    p.add_argument("--variant", default="torchvision", choices=list(VARIANTS))
    p.add_argument(
        "--num-classes",
        type=options.positive,
        default=None,
        help="fc outputs (default: the file's; given, it must match the file)",
    )
    p.add_argument(
        "--in-channels",
        type=options.positive,
        default=None,
        help="input channels (default: the file's; given, it must match the file)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


def run(args: argparse.Namespace) -> int:
    from parity.core.files import check_target
    from parity.io.checkpoints import format_of, read_with_spec, refuse_same_file, write_checkpoint

    format_of(args.dst)
    refuse_same_file(args.src, args.dst)
    check_target(args.dst, args.force)  # fail before the slow part
    err = options.console(stderr=True)
    with err.status(f"converting {args.src} -> {args.dst}"):
        spec, weights = read_with_spec(args.src, args.arch, args.variant, args.num_classes, args.in_channels)
        path = write_checkpoint(weights, args.dst, spec, force=args.force)
    err.print(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {spec.name} ({spec.variant}), "
        f"{spec.num_classes} classes, {spec.in_channels} input channels"
    )
    return 0
