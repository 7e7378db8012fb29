"""`resnet-parity convert`: a checkpoint from one format to another, or into a library's own layout."""

from __future__ import annotations

import argparse

from parity.cli import options, output


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="a checkpoint file or a library's model folder")
    p.add_argument(
        "dst", help=f"the target file ({', '.join(options.formats(writable=True))}), or with --to its folder"
    )
    options.add_arch(p, default=None, help="architecture (default: read from the source)")
    options.add_spec_sizes(p)
    options.add_library(p)
    options.add_force(p)


def run(args: argparse.Namespace) -> int:
    from parity.io.checkpoints import convert

    err = output.console(stderr=True)
    with err.status(f"converting {args.src} -> {args.dst}"):
        path, spec = convert(
            args.src, args.dst, args.to, args.arch, args.variant, args.num_classes, args.in_channels, args.force
        )
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    err.print(
        f"wrote {path} ({size / 1e6:.1f} MB{', for ' + args.to if args.to else ''}): {spec.name} ({spec.variant}), "
        f"{spec.num_classes} classes, {spec.in_channels} input channels"
    )
    return 0
