"""`resnet-parity export`: one model to ONNX, checked with onnx.checker, written atomically."""

from __future__ import annotations

import argparse
from typing import Any

from parity.cli import options, output


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_arch(p, default=None, help="architecture (default resnet50; with --weights: inferred from the file)")
    options.add_backend(p, required=True)
    p.add_argument("--out", required=True, metavar="FILE")
    layout = p.add_mutually_exclusive_group()
    layout.add_argument(
        "--nchw",
        dest="nchw",
        action="store_true",
        default=None,
        help="Keras graph takes NCHW input, like the torch graph",
    )
    layout.add_argument("--nhwc", dest="nchw", action="store_false", help="Keras graph takes NHWC (default)")
    p.add_argument("--opset", type=int, default=18)
    options.add_size(
        p, default=[224], pair=True, help="example input H or H W for tracing (batch, H and W stay dynamic)"
    )
    options.add_spec_overrides(p)
    options.add_weights(
        p, help="export your own checkpoint (any format check --weights reads; the file decides the architecture)"
    )
    options.add_keras_backend(p)
    options.add_seed(p, default=None, help="fill with seeded random weights (default: init)")
    options.add_precision(
        p,
        "fp32, fp16 (an fp16 graph, float32 input and output) or int8 (static QDQ, per-channel weights, calibrated on --data)",
    )
    options.add_force(p)


def run(args: argparse.Namespace) -> int:
    from parity.backends import adapter_named
    from parity.checks.export import export_onnx, op_histogram
    from parity.core.files import check_target
    from parity.io.weights import random_weights, set_weights

    options.select_keras_backend(args.keras_backend)
    check_target(args.out, args.force)  # fail before the slow part
    height, width = options.size(args.size)
    if args.precision == "bf16":
        raise ValueError(
            "--precision bf16: ONNX files are written in fp32, fp16 or int8 here; bf16 is asked of the runtime that "
            "runs the file (resnet-parity check --precision bf16 --runtime openvino)"
        )
    if args.backend == "torch" and args.nchw is False:
        raise ValueError("--nhwc applies to --backend keras only; torch graphs are NCHW")
    weights: dict[str, Any] | None = None
    if args.weights:
        from parity.io.checkpoints import read_with_spec

        if args.set or args.stem or args.seed is not None:
            raise ValueError("--set, --stem and --seed shape or fill a preset network; with --weights the file decides")
        spec, weights = read_with_spec(
            args.weights,
            args.arch,
            args.variant,
            args.num_classes,
            args.in_channels,
        )
    else:
        spec = options.spec_from_args(args.arch or "resnet50", args)
        weights = random_weights(spec, args.seed) if args.seed is not None else None
    side = adapter_named(args.backend)
    refusal = side.onnx_refusal(spec)
    if refusal:
        raise RuntimeError(refusal)
    model = side.build(spec)
    if weights is not None:
        set_weights(model, weights)
    err = output.console(stderr=True)
    calibration = None
    if args.precision == "int8":
        from parity.io.inputs import random_input
        from parity.io.photos import CALIBRATION, photo_inputs

        noise = args.data == "noise"
        calibration = (
            random_input(spec, 24, height, width, 0) if noise else photo_inputs(spec, CALIBRATION, height, width)
        )
    made = args.backend + (f", {args.precision}" if args.precision != "fp32" else "")
    with output.step(f"exporting {spec.name} ({made}) to {args.out}"):
        path = export_onnx(
            model,
            args.out,
            nchw=args.nchw,
            opset=args.opset,
            height=height,
            width=width,
            force=args.force,
            precision=args.precision,
            calibration=calibration,
        )
    ops = op_histogram(path)
    err.print(
        f"wrote {path} ({args.precision}, {path.stat().st_size / 1e6:.1f} MB, opset {args.opset}, "
        f"{sum(ops.values())} nodes: " + ", ".join(f"{k} {v}" for k, v in ops.most_common()) + ")"
    )
    return 0
