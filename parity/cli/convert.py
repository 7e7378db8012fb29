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
    from parity.spec import layout_name

    err = output.console(stderr=True)
    with output.step(f"converting {args.src} -> {args.dst}"):
        path, spec, kept = convert(
            args.src, args.dst, args.to, args.arch, args.variant, args.num_classes, args.in_channels, args.force
        )
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    same = [f"{label} {_shown(kept[key])}" for key, label in KEPT.items() if kept.get(key)]
    err.print(
        f"wrote {path} ({size / 1e6:.1f} MB{', for ' + args.to if args.to else ''}): {spec.name} ({layout_name(spec)}), "
        f"{spec.num_classes} classes, {spec.in_channels} input channels"
        + (f"; as the source: {', '.join(same)}" if same else ""),
        markup=False,
        soft_wrap=True,
    )
    return 0


KEPT = {
    "classifier_activation": "classifier activation",
    "input_shape": "input",
    "labels": "class names",
    "mean": "mean",
    "std": "std",
}
"""What a library's layout keeps from its source, as the line after a conversion says it."""


def _shown(value: object) -> str:
    if isinstance(value, list) and value and all(isinstance(v, (int, type(None))) for v in value):
        return "x".join("any" if v is None else str(v) for v in value)
    if isinstance(value, list):
        return f"{len(value)} of them" if all(isinstance(v, str) for v in value) else str(value)
    return str(value)
