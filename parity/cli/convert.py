"""`resnet-parity convert`: a checkpoint from one format to another (format from the extension)."""

from __future__ import annotations

import argparse

from parity.cli import options

HELP = (
    "convert a checkpoint between .pt/.pth, .safetensors, .npz, .weights.h5 and .keras (format from the extension), "
    "or to a library's own layout (--to hf|timm|keras-applications|keras-hub)"
)


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
    p.add_argument(
        "--to",
        choices=["hf", "timm", "keras-applications", "keras-hub"],
        default=None,
        help="write DST in a library's own layout: a transformers folder, a timm Hub folder, a keras.applications "
        ".keras/.weights.h5/.h5 file or a keras-hub preset folder (default: this project's format, from DST's extension)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from parity.core.files import check_target
    from parity.io.checkpoints import (
        format_of,
        read_with_spec,
        recorded_by,
        refuse_same_file,
        write_checkpoint,
        write_for_library,
    )

    if args.to is None:
        format_of(args.dst)
    refuse_same_file(args.src, args.dst)
    if args.to in (None, "keras-applications"):
        check_target(args.dst, args.force)  # fail before the slow part
    elif Path(args.dst).exists() and not args.force:
        raise FileExistsError(f"{args.dst} exists; pass --force to overwrite it")
    err = options.console(stderr=True)
    with err.status(f"converting {args.src} -> {args.dst}"):
        spec, weights = read_with_spec(args.src, args.arch, args.variant, args.num_classes, args.in_channels)
        if args.to is None:
            path = write_checkpoint(weights, args.dst, spec, force=args.force)
        else:
            path = write_for_library(weights, spec, args.dst, args.to, args.force, recorded_by(args.src))
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    err.print(
        f"wrote {path} ({size / 1e6:.1f} MB{', for ' + args.to if args.to else ''}): {spec.name} ({spec.variant}), "
        f"{spec.num_classes} classes, {spec.in_channels} input channels"
    )
    return 0
