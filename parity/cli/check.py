"""`resnet-parity check`: port weights across backends, judge the port in float64 and the fp32 outputs
against their own rounding noise, name the first wrong block and layer; optionally ONNX and training steps."""

from __future__ import annotations

import argparse
import json
from typing import Any

from parity.cli import options, output
from parity.cli.check_tables import (
    CHECK_COLUMNS,
    PRECISION_COLUMNS,
    RUNTIME_COLUMNS,
    VERDICT_COLUMN,
    bn_form,
    check_table_rows,
    op_table_rows,
    print_precision,
    runtime_lines,
    runtime_table_rows,
)
from parity.spec import parse_archs

DEFAULT_CHECK_ARCHS = "resnet18,resnet34,resnet50"
CHECK_ACTIVATION_COPIES = 4
"""Float64 copies of every activation a check holds at its peak, as an upper bound: both models' float64
runs, and the unit-by-unit pass keeping each unit's input and output."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_arch(
        p,
        default=None,
        many=True,
        help=f"comma list of architectures, or 'all' (default {DEFAULT_CHECK_ARCHS}; with --weights: "
        "inferred from the file)",
    )
    options.add_weights(p, help="check your own checkpoint (.pth/.pt, .safetensors, .npz, .weights.h5, .keras)")
    p.add_argument(
        "--module",
        metavar="PACKAGE.MODULE:FACTORY",
        help="check your own model: a callable returning a torch module or Keras model (e.g. "
        "torchvision.models:resnet50, mynet:build); --weights loads a file saved from it; judged against it",
    )
    p.add_argument(
        "--input",
        nargs="+",
        metavar="FILE",
        help="compare on your data: one .npy NCHW float batch, or image files (resized to --size, "
        "centre-cropped, ImageNet mean/std)",
    )
    p.add_argument("--batch", type=options.positive, default=2)
    options.add_size(p, pair=True)
    options.add_device(p)
    options.add_seed(p)
    options.add_spec_overrides(p)
    options.add_keras_backend(p)
    p.add_argument(
        "--no-float64",
        action="store_true",
        help="skip the float64 pass (fixed fp32 tolerances decide; for devices without float64)",
    )
    p.add_argument(
        "--uncalibrated",
        action="store_true",
        help="seeded weights keep random BN statistics instead of statistics measured on data",
    )
    p.add_argument(
        "--direction",
        default="both",
        choices=["torch2keras", "keras2torch", "both"],
        help="which model is the source (and reference); default both",
    )
    p.add_argument("--allow-tf32", action="store_true", help="let CUDA use TF32 (looser tolerance)")
    options.add_runtime(p, "also carry both models to these runtimes and judge each against the float64 truth")
    options.add_precision(p, "also judge both models in bf16, fp16 or int8 against the reference's own error there")
    p.add_argument(
        "--train-steps",
        type=options.non_negative,
        default=0,
        metavar="N",
        help="also compare N SGD steps (momentum, weight decay, BN in training mode), float64",
    )
    options.add_json(p)
    p.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")


def _check_subject(args: argparse.Namespace, height: int) -> tuple[list[Any], Any, Any, dict[str, Any]]:
    """(one spec per architecture, weights or None, x or None, what the source records beside them: a folder's
    normalisation, a weights-only file's assumptions, the proof of the user's --module model) from the options."""
    weights = x = None
    recorded: dict[str, Any] = {}  # a model folder's own normalisation
    if args.module:
        from parity.backends import backend_of
        from parity.checks.live import from_factory, prove

        if args.arch or args.set or args.stem or args.num_classes is not None or args.in_channels is not None:
            raise ValueError("--module: the model decides the architecture; drop --arch, --set, --stem and the sizes")
        model = from_factory(args.module, args.weights)
        own = backend_of(model)  # the user's model is the reference: one direction, from its framework
        recorded["direction"] = f"{own}2{'keras' if own == 'torch' else 'torch'}"
        if args.direction not in ("both", recorded["direction"]):
            raise ValueError(
                f"--direction {args.direction}: your {type(model).__name__} is a {own} model, the reference of its "
                f"check: use --direction {recorded['direction']} (or leave it out)"
            )
        with output.step(f"reading {args.module} off its layers and proving the reading"):
            proof = prove(model)
        output.console(stderr=True).print(proof.line(), markup=False, highlight=False, soft_wrap=True)
        recorded["proof"] = proof
        specs, weights = [proof.reading.spec], proof.reading.weights
    elif args.weights:
        from parity.io.checkpoints import read_source

        if args.set or args.stem:
            raise ValueError("--set and --stem shape seeded networks; with --weights the file decides the architecture")
        arch = None
        if args.arch is not None:
            archs = parse_archs(args.arch)
            if len(archs) != 1:
                raise ValueError("--weights checks one network: give one --arch (or none, to infer it)")
            arch = archs[0]
        spec, weights, recorded = read_source(args.weights, arch, args.variant, args.num_classes, args.in_channels)
        specs = [spec]
    else:
        specs = [options.spec_from_args(a, args) for a in parse_archs(args.arch or DEFAULT_CHECK_ARCHS)]
    if args.input:
        from parity.io.inputs import IMAGE_EXTENSIONS, describe_images, load_inputs

        x = load_inputs(args.input, height, specs[0].in_channels, recorded.get("mean"), recorded.get("std"))
        images = [p for p in args.input if p.lower().endswith(IMAGE_EXTENSIONS)]
        for line in describe_images(images, specs[0].in_channels):
            output.console(stderr=True).print(line, markup=False, highlight=False)
    return specs, weights, x, recorded


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.backends.runtimes import RUNTIME_NAMES, missing
    from parity.checks.check import DIRECTIONS, CheckConfig, check_arch, check_input_size
    from parity.checks.engines import request_refusal
    from parity.core.files import atomic_write_text, check_target
    from parity.core.provenance import header
    from parity.spec import input_size

    options.select_keras_backend(args.keras_backend)
    runtimes = args.runtime or []
    if runtimes and len(runtimes) < len(RUNTIME_NAMES):  # named ones must be there; 'all' skips the absent, said
        absent = [line for line in (missing(name) for name in runtimes) if line]
        if absent:
            raise ValueError(absent[0])
    named = bool(runtimes) and len(runtimes) < len(RUNTIME_NAMES)
    refused = request_refusal(args.precision, runtimes, named, args.device)
    if refused:
        raise ValueError(refused)
    height, width = options.size(args.size or [input_size(args.variant)])
    options.require_device(args.device)
    for path in (args.json, args.markdown):
        if path:
            check_target(path, force=True)
    specs, weights, x, recorded = _check_subject(args, height)
    batch, (height, width) = (len(x), x.shape[2:]) if x is not None else (args.batch, (height, width))
    # A float64 pass holds about CHECK_ACTIVATION_COPIES float64 copies of every activation (measured below).
    check_input_size(specs, batch, height, width, CHECK_ACTIVATION_COPIES)
    archs = [spec.name for spec in specs]
    directions = list(DIRECTIONS) if args.direction == "both" else [args.direction]
    proof = recorded.get("proof")
    if proof is not None:
        directions = [recorded["direction"]]
    err = output.console(stderr=True)
    results = []
    for arch_spec in specs:
        arch = arch_spec.name
        for direction in directions:
            steps = "build, port, compare in fp32 and float64" + (f", {len(runtimes)} runtime(s)" if runtimes else "")
            steps += f", {args.train_steps} training steps" if args.train_steps else ""
            shape = "x".join(map(str, x.shape)) if x is not None else f"{args.batch}x{height}x{width}"
            with output.step(f"{arch} {direction}: {steps} at {shape}") as say:
                # The runtimes and the training steps do not depend on the direction: once per arch.
                first_pass = direction == directions[0]
                config = CheckConfig(
                    batch=args.batch,
                    height=height,
                    width=width,
                    device=args.device,
                    seed=args.seed,
                    direction=direction,
                    allow_tf32=args.allow_tf32,
                    runtimes=tuple(runtimes) if first_pass else (),
                    train_steps=args.train_steps if first_pass else 0,
                    calibrate=not args.uncalibrated,
                    float64=not args.no_float64,
                    precision=args.precision if first_pass else "fp32",
                    data=args.data,
                )
                result = check_arch(arch_spec, config, weights, x, source=proof, progress=say)
            err.print(f"{arch} {direction}: {'PASS' if result.passed else 'FAIL'} in {result.seconds:.1f}s")
            results.append(result)
    first = results[0].report
    photos = args.data == "photos" or (args.data is None and args.precision != "fp32")
    source = (
        f"your model {args.module}" + (f" with weights {args.weights}" if args.weights else "")
        if args.module
        else f"weights {args.weights}"
        if args.weights
        else (f"seeded weights (seed {args.seed}, BN {'uncalibrated' if args.uncalibrated else 'calibrated'})")
        + (" on photographs" if photos and not args.uncalibrated else "")
    )
    inputs = f"{'photographs' if photos else 'seeded input'} {args.batch}x{height}x{width}"
    inputs = f"input {' '.join(args.input)}" if args.input else inputs
    verdicts = (
        "port verdict in float64 (FP64), fp32 verdict within FP32_NOISE_MULTIPLE x the reference's fp32 noise"
        if first.float64
        else first.float64_note
    )
    title = f"parity check on {args.device}: {source}, {inputs}; {verdicts}"
    table = Table(title=title, caption=header(first.provenance))
    for col in CHECK_COLUMNS:
        table.add_column(col, justify="right" if "max" in col or col in ("seconds", "fp32 / noise") else "left")
    rows = check_table_rows(results)
    for row in rows:
        table.add_row(*row, style=None if row[VERDICT_COLUMN] == "PASS" else "red")
    console = output.console()
    for said in dict.fromkeys(f"{r.arch}: {r.report.nonfinite}" for r in results if r.report.nonfinite):
        console.print(said, markup=False, highlight=False, soft_wrap=True)  # first: it makes the table moot
    console.print(table)
    for r in results:
        if r.direction == directions[0] and r.params.line():
            console.print(f"{r.arch} ({r.layout}) parameters: {r.params.line()}")
    if recorded.get("assumed"):  # a weights-only file: what it does not hold was taken from the spec
        console.print(
            f"assumed, as {args.weights} holds weights only: {recorded['assumed']}. To check your model itself: "
            f"resnet-parity check --module PACKAGE.MODULE:FACTORY --weights {args.weights} (in Python: "
            "parity.assert_parity(model, parity.port(model)))",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    for r in results:
        if not r.report.passed:
            console.print(f"\n{r.arch} {r.direction}:\n{r.report}", highlight=False, markup=False)
    runtime_rows = runtime_table_rows(results)
    if runtime_rows:
        reference = f"{results[0].direction.split('2')[0]} model's"
        table = Table(title=f"runtimes, each judged against the {reference} float64 output (fp32 rule), on CPU")
        for col in RUNTIME_COLUMNS:
            table.add_column(col, justify="right" if col[0] in "m/f" and col != "first wrong unit" else "left")
        for row in runtime_rows:
            table.add_row(*row, style=None if row[RUNTIME_COLUMNS.index("verdict")] == "PASS" else "red")
        console.print(table)
    for line in runtime_lines(results):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    precision_rows = print_precision(console, results)
    op_markdown = ""
    for r in results:
        if r.onnx_ops and r.direction == directions[0]:
            ops = Table(
                title=f"{r.arch}: ONNX ops per graph; BatchNorm: "
                + "; ".join(f"{label} {bn_form(counts)}" for label, counts in r.onnx_ops.items())
            )
            ops.add_column("op")
            for label in r.onnx_ops:
                ops.add_column(label, justify="right")
            op_rows = op_table_rows(r.onnx_ops)
            for row in op_rows:
                ops.add_row(*row)
            console.print(ops)
            op_markdown += f"\n**{r.arch}: ONNX ops per graph**\n\n" + output.to_markdown(["op", *r.onnx_ops], op_rows)
    passed = all(r.passed for r in results)
    if args.json:
        given = ("batch", "seed", "variant", "device", "allow_tf32", "train_steps", "weights", "module", "input")
        settings = {key: getattr(args, key) for key in given} | {"precision": args.precision, "data": args.data}
        settings |= {"archs": archs, "size": [height, width], "directions": directions, "runtimes": runtimes}
        settings |= {"assumed": recorded.get("assumed"), "float64": not args.no_float64}
        payload = {
            "config": settings | {"calibrated": not args.uncalibrated},
            "provenance": first.provenance,
            "passed": passed,
            "results": [r.to_dict() for r in results],
        }
        from parity.core.formatting import json_safe

        atomic_write_text(args.json, json.dumps(json_safe(payload), indent=2) + "\n")
    if args.markdown:
        atomic_write_text(
            args.markdown,
            f"**{title}**\n\n{header(first.provenance)}\n\n"
            + output.to_markdown(CHECK_COLUMNS, rows)
            + (f"\n{output.to_markdown(RUNTIME_COLUMNS, runtime_rows)}" if runtime_rows else "")
            + (f"\n{output.to_markdown(PRECISION_COLUMNS, precision_rows)}" if precision_rows else "")
            + op_markdown,
        )
    return 0 if passed else 1
