"""`resnet-parity`: summary, check, export, convert, lessons, train, predict, evaluate and bench."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from parity.compare import fmt_sci

DEFAULT_CHECK_ARCHS = "resnet18,resnet34,resnet50"


def _quiet_frameworks() -> None:
    # TensorFlow's C++ start-up logging drowns the tables; users can still override it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Deprecation notices from inside tf2onnx and torch.export, not about anything a user passed.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(keras|torch|tf2onnx|copyreg)")
    warnings.filterwarnings("ignore", message=r".*np\.object.*", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=200 if not sys.stdout.isatty() else None)


def _size(values: Sequence[int]) -> tuple[int, int]:
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise ValueError(f"--size takes H or H W, got {len(values)} numbers")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _even_size(text: str) -> int:
    value = int(text)
    if value < 8 or value % 2:
        raise argparse.ArgumentTypeError(f"must be an even number >= 8 (the odd-size lessons use size + 1), got {value}")
    return value


def _backend_list(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in ("torch", "keras")]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown backend(s) {', '.join(map(repr, unknown))}; "
                                         "use a comma list of torch, keras (or '' for none)")
    return names


KERAS_BACKENDS = ("tensorflow", "torch", "jax")


def select_keras_backend(name: str | None) -> None:
    """Make `import keras` use this backend (before Keras is imported), or refuse clearly."""
    import importlib.util

    if name is None:
        return
    if name not in KERAS_BACKENDS:
        raise ValueError(f"--keras-backend must be one of {', '.join(KERAS_BACKENDS)}, got {name!r}")
    if importlib.util.find_spec(name) is None:  # each backend is the package of the same name
        raise ValueError(f"--keras-backend {name} needs the {name} package, which is not installed")
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != name:
        raise ValueError(f"--keras-backend {name}: Keras is already loaded with the {loaded.backend.backend()} "
                         "backend in this process; run in a fresh process or set KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = name


# -- summary ---------------------------------------------------------------------------------------


def stage_of(layer_name: str) -> str:
    """'conv1' / 'bn1' / 'maxpool' -> 'stem'; 'layer2.0.conv1' -> 'layer2'; 'fc' -> 'fc'."""
    head = layer_name.split(".")[0]
    return "stem" if head in ("conv1", "bn1", "maxpool") else head


def built_stage_counts(spec, backend: str) -> dict[str, int] | str:
    """Per-stage trainable parameters of a built model, or a reason it could not be built."""
    from parity.backends import adapter_named

    try:
        side = adapter_named(backend)
        model = side.build(spec)
        groups = {"stem": [model.conv1, model.bn1], "fc": [model.fc]}
        groups.update({f"layer{i + 1}": [s] for i, s in enumerate(model.stages)})
        return {k: sum(side.count_params(m)[0] for m in ms) for k, ms in groups.items()}
    except ImportError as exc:
        return f"not installed ({exc.name})"


def group_of(layer_name: str, depth: str) -> str:
    """The row a layer is summed into at a depth: stage ('layer2'), block ('layer2.0') or layer."""
    if depth == "layer":
        return layer_name
    stage = stage_of(layer_name)
    if depth == "block" and stage.startswith("layer"):
        return ".".join(layer_name.split(".")[:2])
    return stage


def parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """`--set field=value` pairs -> spec overrides; values as JSON (1e-3, true, null), '3,4,6,3' a tuple."""
    import dataclasses

    from parity.spec import ResNetSpec

    fields = [f.name for f in dataclasses.fields(ResNetSpec) if f.name not in ("name", "variant")]
    overrides: dict[str, Any] = {}
    for item in items or []:
        field, sep, text = item.partition("=")
        field = field.strip().replace("-", "_")
        if not sep or not field:
            raise ValueError(f"--set takes field=value, got {item!r}")
        if field not in fields:
            raise ValueError(f"--set {field}: unknown spec field; fields are {', '.join(fields)}")
        text = text.strip()
        if "," in text:
            try:
                value: Any = tuple(int(v) for v in text.split(",") if v.strip())
            except ValueError:
                raise ValueError(f"--set {field}: a comma list holds ints (e.g. 3,4,6,3), got {text!r}") from None
        else:
            try:
                value = json.loads(text.lower() if text.lower() in ("true", "false", "null") else text)
            except json.JSONDecodeError:
                value = text
        overrides[field] = value
    return overrides


def spec_from_args(arch: str, args: argparse.Namespace):
    """A preset spec with --variant, --num-classes, --in-channels, --stem and --set applied (validated)."""
    from parity.spec import make_spec

    overrides = parse_set(getattr(args, "set", None))
    for field in ("num_classes", "in_channels", "stem"):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    return make_spec(arch, args.variant, **overrides)  # parse_set has named any unknown field


def cmd_summary(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.files import atomic_write_text
    from parity.spec import input_size

    spec = spec_from_args(args.arch, args)
    height, width = _size(args.size or [input_size(spec.variant)])
    rows = spec.layer_table(height, width)
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault(group_of(row.name, args.depth),
                                  {"kind": row.kind, "output": row.output_shape, "params": 0, "macs": 0,
                                   "kernel": row.kernel, "stride": row.stride, "padding": row.padding})
        group["params"] += row.params
        group["macs"] += row.macs
        if ".downsample" not in row.name:
            group["output"] = row.output_shape
    built = {b: built_stage_counts(spec, b) for b in args.backends} if args.depth == "stage" else {}
    built_totals = {b: built_totals_of(spec, b) for b in args.backends}
    title = f"{spec.name} ({spec.variant}) at {spec.in_channels}x{height}x{width}, by {args.depth}"
    table = Table(title=title)
    columns = [args.depth, "output (C, H, W)"] + (["kernel / stride / pad"] if args.depth == "layer" else [])
    columns += ["params (spec)"] + [f"params ({b})" for b in built] + ["MACs"]
    for col in columns:
        table.add_column(col, justify="left" if col in (args.depth, "output (C, H, W)") else "right")
    for name, group in groups.items():
        cells = [name, str(group["output"])]
        if args.depth == "layer":
            cells.append("-" if group["kernel"] is None else f"{group['kernel']} / {group['stride']} / {group['padding']}")
        cells.append(f"{group['params']:,}")
        for counts in built.values():
            cells.append(f"{counts[name]:,}" if isinstance(counts, dict) else "-")
        table.add_row(*cells, f"{group['macs'] / 1e6:,.1f} M")
    totals = spec.param_counts()
    cells = ["total", ""] + ([""] if args.depth == "layer" else []) + [f"{totals['trainable']:,}"]
    for counts in built.values():
        cells.append(f"{sum(counts.values()):,}" if isinstance(counts, dict) else counts)
    table.add_row(*cells, f"{spec.macs(height, width) / 1e9:,.3f} G", style="bold")
    console = _console()
    console.print(table)
    console.print(f"Keras (model.summary()): Total params: {totals['keras_total']:,}, Trainable params: "
                  f"{totals['keras_trainable']:,}, Non-trainable params: {totals['keras_non_trainable']:,} "
                  "(BatchNorm moving mean and variance)")
    console.print(f"PyTorch: parameters(): {totals['torch_parameters']:,}; buffers(): {totals['torch_buffers']:,} "
                  "(running_mean, running_var and one num_batches_tracked per BatchNorm)")
    mismatched = [b for b, c in built.items() if isinstance(c, dict) and c != {k: v["params"] for k, v in groups.items()}]
    mismatched += [b for b, t in built_totals.items() if isinstance(t, dict) and
                   any(t[k] != totals[k] for k in t) and b not in mismatched]
    if args.json:
        payload = {"spec": spec.to_dict(), "input": [spec.in_channels, height, width], "depth": args.depth,
                   "rows": [{"name": name, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}}
                            for name, g in groups.items()],
                   "totals": totals, "macs": spec.macs(height, width), "built": built_totals}
        atomic_write_text(args.json, json.dumps(payload, indent=2) + "\n")
    if mismatched:
        console.print(f"[red]parameter counts differ from the spec for: {', '.join(mismatched)}[/red]")
        return 1
    return 0


def built_totals_of(spec, backend: str) -> dict[str, int] | str:
    """A built model's totals in its own framework's convention (Keras' summary(), or torch's)."""
    from parity.backends import adapter_named

    try:
        side = adapter_named(backend)
        return side.framework_counts(side.build(spec))
    except ImportError as exc:
        return f"not installed ({exc.name})"


# -- check -----------------------------------------------------------------------------------------


def check_table_rows(results: list[Any]) -> list[list[str]]:
    rows = []
    for r in results:
        p = r.params
        native = r.report
        rows.append([
            r.arch,
            r.direction,
            f"{p.spec:,} / {p.torch:,} / {p.keras:,}",
            "x".join(map(str, r.output_shape)),
            fmt_sci(native.port_max_rel) if native.float64 else "off",
            fmt_sci(native.logits.max_rel),
            f"{native.worst_ratio:.1f}x" if native.float64 and native.tolerance_name == "FP32_NOISE_MULTIPLE" else "-",
            native.first_wrong or "-",
            "PASS" if p.equal and native.passed else "FAIL",
            f"{r.seconds:.1f}",
        ])
        if r.train is not None:
            t = r.train
            failed = [d.stage for d in t.loss + t.grads + [t.weights, t.running] if not d.passed]
            worst = max(t.loss + t.grads + [t.weights, t.running], key=lambda d: d.max_rel)
            rows.append([
                r.arch,
                f"train {t.steps} SGD steps (float64)",
                "",
                f"{t.config['batch']}x{t.config['size'][0]}x{t.config['size'][1]}",
                fmt_sci(worst.max_rel),
                "-",
                "-",
                failed[0] if failed else "-",
                "PASS" if t.passed else "FAIL",
                f"{t.seconds:.1f}",
            ])
        for o in r.onnx_reports:
            rows.append([
                r.arch,
                f"{o.a} vs {o.b}",
                "",
                "x".join(map(str, o.logits.shape_b)),
                "-",
                fmt_sci(o.logits.max_rel),
                "-",
                o.first_divergent or "-",
                "PASS" if o.passed else "FAIL",
                "",
            ])
    return rows


BN_OPS = ("BatchNormalization", "Sub", "Div", "Sqrt", "Mul")
"""Ops a graph computes an unfolded BatchNorm with (as one node, or as arithmetic)."""


def bn_form(counts: dict[str, int]) -> str:
    """How a graph holds its BatchNorms, read off its op counts (never assumed)."""
    found = {op: counts[op] for op in BN_OPS if counts.get(op)}
    if not found:
        return "folded into the convs"
    return "computed as " + ", ".join(f"{n} {op}" for op, n in found.items())


def op_table_rows(ops: dict[str, dict[str, int]]) -> list[list[str]]:
    """Op type, count in each ONNX graph; ops present in only one graph first."""
    labels = list(ops)
    names = sorted({op for counts in ops.values() for op in counts},
                   key=lambda op: (len({l for l in labels if op in ops[l]}) == len(labels), op))
    return [[op] + [str(ops[l].get(op, 0)) for l in labels] for op in names]


CHECK_COLUMNS = ["arch", "direction", "params spec / torch / keras", "output", "port: float64 max rel",
                 "fp32 logits max rel", "fp32 / noise", "first wrong", "verdict", "seconds"]
VERDICT_COLUMN = CHECK_COLUMNS.index("verdict")


def to_markdown(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _check_subject(args: argparse.Namespace, height: int) -> tuple[list[Any], Any, Any]:
    """(one spec per architecture, weights or None, x or None) from --arch, --weights and --input."""
    from parity.spec import parse_archs

    weights = x = None
    if args.weights:
        from parity.checkpoints import read_with_spec

        if args.set or args.stem:
            raise ValueError("--set and --stem shape seeded networks; with --weights the file decides the architecture")
        arch = None
        if args.arch is not None:
            archs = parse_archs(args.arch)
            if len(archs) != 1:
                raise ValueError("--weights checks one network: give one --arch (or none, to infer it)")
            arch = archs[0]
        spec, weights = read_with_spec(args.weights, arch, args.variant, args.num_classes, args.in_channels)
        specs = [spec]
    else:
        specs = [spec_from_args(a, args) for a in parse_archs(args.arch or DEFAULT_CHECK_ARCHS)]
    if args.input:
        from parity.inputs import load_inputs

        x = load_inputs(args.input, size=height, channels=specs[0].in_channels)
    return specs, weights, x


def cmd_check(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.compare import cuda_available
    from parity.files import atomic_write_text, check_target

    select_keras_backend(args.keras_backend)
    from parity.check import DIRECTIONS, check_arch
    from parity.provenance import header, keras_backend

    if args.onnx:  # before any work: the check would otherwise run in full and fail at the export
        from parity.export import refuse_keras_onnx

        refuse_keras_onnx(keras_backend())
    from parity.spec import input_size

    height, width = _size(args.size or [input_size(args.variant)])
    if args.device == "cuda" and not cuda_available():
        print("resnet-parity: --device cuda, but no CUDA device is visible to torch", file=sys.stderr)
        return 2
    for path in (args.json, args.markdown):
        if path:
            check_target(path, force=True)
    specs, weights, x = _check_subject(args, height)
    archs = [spec.name for spec in specs]
    directions = list(DIRECTIONS) if args.direction == "both" else [args.direction]
    err = _console(stderr=True)
    results = []
    for arch_spec in specs:
        arch = arch_spec.name
        for direction in directions:
            steps = "build, port, compare in fp32 and float64" + (", export ONNX, run onnxruntime" if args.onnx else "")
            steps += f", {args.train_steps} training steps" if args.train_steps else ""
            shape = "x".join(map(str, x.shape)) if x is not None else f"{args.batch}x{height}x{width}"
            with err.status(f"{arch} {direction}: {steps} at {shape}"):
                # The ONNX files hold the same weights in either direction: export once per arch.
                onnx = args.onnx and direction == directions[0]
                result = check_arch(arch, args.batch, height, width, args.device, args.seed, direction,
                                    args.variant, args.allow_tf32, spec=arch_spec, onnx=onnx,
                                    train_steps=args.train_steps if direction == directions[0] else 0,
                                    weights=weights, x=x, calibrate=not args.uncalibrated,
                                    float64=not args.no_float64)
            err.print(f"{arch} {direction}: {'PASS' if result.passed else 'FAIL'} in {result.seconds:.1f}s")
            results.append(result)
    first = results[0].report
    source = f"weights {args.weights}" if args.weights else (
        f"seeded weights (seed {args.seed}, BN {'uncalibrated' if args.uncalibrated else 'calibrated'})")
    inputs = f"input {' '.join(args.input)}" if args.input else f"seeded input {args.batch}x{height}x{width}"
    verdicts = ("port verdict in float64 (FP64), fp32 verdict within FP32_NOISE_MULTIPLE x the reference's fp32 noise"
                if first.float64 else first.float64_note)
    title = f"parity check on {args.device}: {source}, {inputs}; {verdicts}"
    table = Table(title=title, caption=header(first.provenance))
    for col in CHECK_COLUMNS:
        table.add_column(col, justify="right" if "max" in col or col in ("seconds", "fp32 / noise") else "left")
    rows = check_table_rows(results)
    for row in rows:
        table.add_row(*row, style=None if row[VERDICT_COLUMN] == "PASS" else "red")
    console = _console()
    console.print(table)
    for r in results:
        if r.direction == directions[0] and r.params.line():
            console.print(f"{r.arch} ({r.variant}) parameters: {r.params.line()}")
    for r in results:
        if not r.report.passed:
            console.print(f"\n{r.arch} {r.direction}:\n{r.report}", highlight=False, markup=False)
    op_markdown = ""
    for r in results:
        if r.onnx_ops and r.direction == directions[0]:
            ops = Table(title=f"{r.arch}: ONNX ops per graph; BatchNorm: " + "; ".join(
                f"{label} {bn_form(counts)}" for label, counts in r.onnx_ops.items()))
            ops.add_column("op")
            for label in r.onnx_ops:
                ops.add_column(label, justify="right")
            op_rows = op_table_rows(r.onnx_ops)
            for row in op_rows:
                ops.add_row(*row)
            console.print(ops)
            op_markdown += f"\n**{r.arch}: ONNX ops per graph**\n\n" + to_markdown(["op", *r.onnx_ops], op_rows)
    passed = all(r.passed for r in results)
    if args.json:
        payload = {
            "config": {"archs": archs, "batch": args.batch, "size": [height, width], "device": args.device,
                       "seed": args.seed, "variant": args.variant, "directions": directions,
                       "allow_tf32": args.allow_tf32, "onnx": args.onnx, "train_steps": args.train_steps,
                       "weights": args.weights, "input": args.input, "float64": not args.no_float64,
                       "calibrated": not args.uncalibrated},
            "provenance": first.provenance,
            "passed": passed,
            "results": [r.to_dict() for r in results],
        }
        from parity.compare import json_safe

        atomic_write_text(args.json, json.dumps(json_safe(payload), indent=2) + "\n")
    if args.markdown:
        atomic_write_text(args.markdown, f"**{title}**\n\n{header(first.provenance)}\n\n"
                          + to_markdown(CHECK_COLUMNS, rows) + op_markdown)
    return 0 if passed else 1


# -- export ----------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from parity.export import export_onnx, op_histogram
    from parity.files import check_target
    from parity.spec import make_spec
    from parity.weights import random_weights, set_weights

    check_target(args.out, args.force)  # fail before the slow part
    height, width = _size(args.size)
    spec = make_spec(args.arch, args.variant, num_classes=args.num_classes, in_channels=args.in_channels)
    if args.backend == "torch":
        if args.nchw is False:
            raise ValueError("--nhwc applies to --backend keras only; torch graphs are NCHW")
        import resnet_torch as backend
    else:
        import resnet_keras as backend
    model = backend.ResNet(spec)
    if args.seed is not None:
        set_weights(model, random_weights(spec, args.seed))
    err = _console(stderr=True)
    with err.status(f"exporting {spec.name} ({args.backend}) to {args.out}"):
        path = export_onnx(model, args.out, nchw=args.nchw, opset=args.opset, height=height, width=width,
                           force=args.force)
    ops = op_histogram(path)
    err.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, opset {args.opset}, "
              f"{sum(ops.values())} nodes: " + ", ".join(f"{k} {v}" for k, v in ops.most_common()) + ")")
    return 0


# -- lessons ---------------------------------------------------------------------------------------

LESSON_COLUMNS = ["difference", "case", "handled in", "naive: max abs", "naive: max rel", "naive: first divergent",
                  "correct: max rel", "tolerance", "verdict"]


def lesson_rows(findings: list[Any]) -> list[list[str]]:
    rows = []
    for f in findings:
        if f.naive is None:
            rows.append([f.title, f.case, f.handled, "-", "-", "-", "-", f"{f.tolerance:.0e}", f"skipped: {f.skipped}"])
            continue
        if not f.correct_ok:
            verdict = "CORRECT PORT DRIFTS"
        else:
            verdict = "matters: caught" if f.caught else "harmless here"
        rows.append([
            f.title, f.case, f.handled, fmt_sci(f.naive.max_abs), fmt_sci(f.naive.max_rel),
            f.naive.first_divergent or "-", fmt_sci(f.correct.max_rel), f"{f.tolerance:.0e}", verdict,
        ])
    return rows


def cmd_lessons(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.compare import cuda_available
    from parity.files import atomic_write_text, check_target
    from parity.lessons import run_lessons

    if args.device == "cuda" and not cuda_available():
        print("resnet-parity: --device cuda, but no CUDA device is visible to torch", file=sys.stderr)
        return 2
    for path in (args.json, args.docs, args.plot):
        if path:
            check_target(path, force=True)
    err = _console(stderr=True)
    only = [k.strip() for k in args.only.split(",")] if args.only else None
    with err.status("measuring") as status:
        findings = run_lessons(args.arch, args.size, args.device, args.seed, only, args.train_steps,
                               progress=lambda title: status.update(f"measuring: {title}"))
    table = Table(title=f"{args.arch}: each difference left unhandled in the Keras port, measured against torch "
                        f"({args.device}, {args.size}x{args.size}, seed {args.seed})")
    for col in LESSON_COLUMNS:
        table.add_column(col, justify="right" if "max" in col or col == "tolerance" else "left")
    rows = lesson_rows(findings)
    for row in rows:
        table.add_row(*row, style="red" if row[-1] == "CORRECT PORT DRIFTS" else None)
    _console().print(table)
    command = "resnet-parity " + " ".join(args.argv)
    if args.json:
        from dataclasses import asdict

        from parity.compare import json_safe

        payload = {"command": command, "findings": [{**asdict(f), "caught": f.caught, "correct_ok": f.correct_ok}
                                                    for f in findings]}
        atomic_write_text(args.json, json.dumps(json_safe(payload), indent=2) + "\n")
    if args.plot:
        from parity.docs import plot_lessons

        plot_lessons(findings, args.plot, title=f"{args.arch}, {args.size}x{args.size}: per-stage drift from torch")
    if args.docs:
        from parity.docs import lessons_markdown

        atomic_write_text(args.docs, lessons_markdown(findings, LESSON_COLUMNS, rows, command, args.plot))
    return 0 if all(f.correct_ok for f in findings) else 1


# -- convert ---------------------------------------------------------------------------------------


def cmd_convert(args: argparse.Namespace) -> int:
    from parity.checkpoints import read_with_spec, write_checkpoint
    from parity.files import check_target
    from parity.checkpoints import format_of

    format_of(args.dst)
    check_target(args.dst, args.force)  # fail before the slow part
    err = _console(stderr=True)
    with err.status(f"converting {args.src} -> {args.dst}"):
        spec, weights = read_with_spec(args.src, args.arch, args.variant, args.num_classes, args.in_channels)
        path = write_checkpoint(weights, args.dst, spec, force=args.force)
    err.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {spec.name} ({spec.variant}), "
              f"{spec.num_classes} classes, {spec.in_channels} input channels")
    return 0


# -- train, predict, evaluate ----------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from parity.trainer import TrainConfig, train

    select_keras_backend(args.keras_backend)
    overrides = parse_set(args.set)
    if args.stem is not None:
        overrides["stem"] = args.stem
    for field in ("num_classes", "in_channels"):
        if field in overrides:
            raise ValueError(f"--set {field}: train takes it from the data (classes, RGB images)")
    from parity.trainer import BACKENDS

    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    config = TrainConfig(data=args.data, arch=args.arch, spec=overrides, backends=backends, epochs=args.epochs,
                         batch=args.batch, lr=args.lr, optimizer=args.optimizer, momentum=args.momentum,
                         weight_decay=args.weight_decay, size=args.size, seed=args.seed, device=args.device,
                         normalise=args.normalise, crop_padding=args.crop_padding, flip=args.flip,
                         devices=args.devices, sync_bn=args.sync_bn)
    if args.nproc > 1:
        return _launch_torchrun(args, config)
    if args.devices > 1:
        from parity.distributed import host_devices_flag

        host_devices_flag(args.devices)  # before JAX starts: CPU-only machines get N CPU devices
    run = train(config, args.out, resume=args.resume, console=_console())
    if any(run.history.values()):  # under torchrun only process 0 has the history
        best = {b: max(r["val_acc"] for r in rows) for b, rows in run.history.items()}
        _console().print(f"best validation accuracy: {', '.join(f'{b} {a:.2%}' for b, a in best.items())}; "
                         f"run directory {run.out}")
    return 0


def _launch_torchrun(args: argparse.Namespace, config: Any) -> int:
    """`train --nproc N`: check what can be checked here, then run the same command under torchrun."""
    from parity.distributed import check_divisible, launch, without_option
    from parity.trainer import prepare_run_dir

    if config.backends != ("torch",):
        raise ValueError(f"--nproc {args.nproc} trains the torch backend in {args.nproc} torchrun processes; "
                         "add --backend torch (Keras spreads over devices with --devices N)")
    check_divisible(config.batch, args.nproc, "processes")
    if config.sync_bn:
        from resnet_torch.distributed import check_sync_bn

        check_sync_bn(config.device)
    prepare_run_dir(Path(args.out), config, args.resume)  # refuses an existing run or changed settings now
    launch(args.nproc, without_option(args.argv, "--nproc"), Path(args.out))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from parity.predict import load_trained, predict_images

    select_keras_backend(args.keras_backend)
    trained = load_trained(args.weights, args.backend)
    console = _console()
    for path, top in zip(args.images, predict_images(trained, args.images, args.topk)):
        console.print(f"{path}: " + ", ".join(f"{name} {p:.1%}" for name, p in top), markup=False)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.predict import evaluate, evaluation_data, load_trained, plot_confusion

    select_keras_backend(args.keras_backend)
    trained = load_trained(args.weights, args.backend)
    data = evaluation_data(args.data, trained, args.seed)
    result = evaluate(trained, data, args.batch)
    console = _console()
    console.print(f"{args.weights} in {args.backend} on {data.name}: {len(data)} images, "
                  f"loss {result.loss:.4f}, accuracy {result.accuracy:.2%}", markup=False)
    table = Table()
    for column in ("class", "images", "accuracy"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, count, acc in zip(result.classes, result.counts, result.per_class):
        table.add_row(name, str(count), f"{acc:.2%}")
    console.print(table)
    if args.plot:
        plot_confusion(result, args.plot)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.bench import run_bench, plot_bench
    from parity.files import atomic_write_text, check_target

    for path in (args.json, args.plot):
        if path:
            check_target(path, force=True)
    err = _console(stderr=True)
    result = run_bench(args.arch, args.batch, args.size, args.runtimes, args.warmup, args.repeats,
                       progress=lambda name: err.print(f"timing {name} ...") if err.is_terminal else None)
    table = Table(title=f"{result.arch}, batch {result.batch}, {result.size}x{result.size}, fp32, {result.device}, "
                        f"{result.threads} threads; {result.gflop_per_image:.2f} GFLOP per image; "
                        f"SGEMM peak {result.sgemm_peak_gflops:.0f} GFLOP/s (measured now)")
    for column in ("runtime", "kind", "ms/batch", "images/s", "GFLOP/s", "of peak", "note"):
        table.add_column(column, justify="left" if column in ("runtime", "kind", "note") else "right")
    for t in result.timings:
        if t.skipped:
            table.add_row(t.runtime, t.kind, "-", "-", "-", "-", f"skipped: {t.skipped}")
        else:
            table.add_row(t.runtime, t.kind, f"{t.ms_per_batch:.1f}", f"{t.images_per_s:.1f}", f"{t.gflops:.0f}",
                          f"{t.of_peak:.0%}", t.note)
    _console().print(table)
    if args.json:
        atomic_write_text(args.json, json.dumps(result.to_dict(), indent=1))
    if args.plot:
        plot_bench(result, args.plot)
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.files import atomic_write_text, check_target
    from parity.scale import ScaleConfig, check

    if args.json:
        check_target(args.json, force=True)
    spec = {**ScaleConfig().spec, **parse_set(args.set)}
    if args.stem is not None:
        spec["stem"] = args.stem
    backends = ["torch", "keras"] if args.backend == "both" else [args.backend]
    configs = {b: ScaleConfig(arch=args.arch, spec=spec, parts=args.nproc if b == "torch" else args.devices,
                              steps=args.steps, batch=args.batch, size=args.size, lr=args.lr, seed=args.seed,
                              dtype=args.dtype, sync_bn=args.sync_bn, device=args.device) for b in backends}
    console, err = _console(), _console(stderr=True)
    reports = []
    for backend, config in configs.items():
        if err.is_terminal:
            err.print(f"{backend}: {config.parts} {'processes' if backend == 'torch' else 'devices'} ...")
        report = check(backend, config)
        reports.append(report)
        table = Table(title=f"{report.engine}: {report.parts} {'processes' if backend == 'torch' else 'devices'} "
                            f"against {report.expected}; {config.arch} {config.dtype}, global batch {config.batch} "
                            f"of {config.size}x{config.size}, SGD lr {config.lr}")
        for column in ("step", "worst rel. diff", "in", "weights: distance to global batch", "BN statistics: distance"):
            table.add_column(column, justify="left" if column == "in" else "right")
        for step, (w, key, g, b) in enumerate(zip(report.worst, report.worst_tensor, report.global_weights,
                                                  report.global_stats), 1):
            table.add_row(str(step), fmt_sci(w), key, fmt_sci(g), fmt_sci(b))
        console.print(table)
        verdict, sign = ("PASS", "<=") if report.passed else ("FAIL", ">")
        console.print(f"{backend}: {verdict} (worst {fmt_sci(max(report.worst))} {sign} {report.tolerance_name} "
                      f"{fmt_sci(report.tolerance)})", markup=False)
    if args.json:
        atomic_write_text(args.json, json.dumps([r.to_dict() for r in reports], indent=1))
    return 0 if all(r.passed for r in reports) else 1


def _runtime_list(text: str) -> list[str]:
    from parity.bench import RUNTIMES

    names = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in names if r not in RUNTIMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown runtime(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                                         f"use a comma list of {', '.join(RUNTIMES)}")
    return names


def _train_parsers(sub: Any) -> None:
    from parity.data import NORMALISATIONS
    from parity.spec import ARCHS, STEMS
    from parity.trainer import BACKENDS, OPTIMIZERS

    p = sub.add_parser("train", help="train the torch model, the Keras model or both (same weights, same batches)")
    p.add_argument("--data", required=True, help="'digits' (bundled), 'cifar10:PATH' or an ImageFolder path")
    p.add_argument("--arch", default="resnet18", choices=list(ARCHS))
    p.add_argument("--stem", choices=list(STEMS), default=None, help="stem kind (default: the preset's)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="any spec field, e.g. --set widths=16,32,64,128 (repeatable)")
    p.add_argument("--backend", default="both", choices=[*BACKENDS, "both"])
    p.add_argument("--epochs", type=_positive, default=10)
    p.add_argument("--batch", type=_positive, default=32)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--optimizer", default="sgd", choices=list(OPTIMIZERS))
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (torch's convention)")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="coupled L2, as torch's weight_decay")
    p.add_argument("--size", type=_positive, default=32, help="images are resized to size x size")
    p.add_argument("--normalise", default="imagenet", choices=list(NORMALISATIONS),
                   help="ImageNet mean/std, or (x - 0.5) / 0.5")
    p.add_argument("--crop-padding", type=_non_negative, default=0,
                   help="training augmentation: pad, then random-crop back to size (0: off)")
    p.add_argument("--flip", action="store_true", help="training augmentation: random horizontal flip")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1); Keras places itself")
    p.add_argument("--keras-backend", choices=list(KERAS_BACKENDS), default=None)
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last complete epoch")
    p.add_argument("--nproc", type=_positive, default=1,
                   help="torch: data parallel over N processes on this machine (starts torchrun; DDP, gloo on CPU, "
                        "NCCL on GPUs); --batch stays the global batch")
    p.add_argument("--devices", type=_positive, default=1,
                   help="Keras: data parallel over N devices in this process (keras.distribution, JAX backend)")
    p.add_argument("--sync-bn", action="store_true",
                   help="torch under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm, CUDA)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="class names and softmax percentages for image files")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--weights", required=True, metavar="best.safetensors")
    p.add_argument("--backend", default="torch", choices=list(BACKENDS))
    p.add_argument("--topk", type=_positive, default=5)
    p.add_argument("--keras-backend", choices=list(KERAS_BACKENDS), default=None)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="loss, accuracy and per-class accuracy of a checkpoint on held-out data")
    p.add_argument("--weights", required=True, metavar="best.safetensors")
    p.add_argument("--data", required=True, help="as for train; its validation split (or CIFAR-10's test batch)")
    p.add_argument("--backend", default="torch", choices=list(BACKENDS))
    p.add_argument("--batch", type=_positive, default=64)
    p.add_argument("--seed", type=_non_negative, default=None, help="split seed (default: the training run's)")
    p.add_argument("--plot", metavar="PNG", help="write the confusion matrix")
    p.add_argument("--keras-backend", choices=list(KERAS_BACKENDS), default=None)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="every runtime side by side: torch, torch.compile, Keras on each backend, "
                                     "onnxruntime on both exports, training steps; img/s and share of SGEMM peak")
    p.add_argument("--arch", default="resnet50", choices=list(ARCHS))
    p.add_argument("--batch", type=_positive, default=8)
    p.add_argument("--size", type=_positive, default=224)
    p.add_argument("--runtimes", type=_runtime_list, default=None, metavar="A,B",
                   help="comma list (default: all); see parity.bench.RUNTIMES")
    p.add_argument("--warmup", type=_non_negative, default=2)
    p.add_argument("--repeats", type=_positive, default=5)
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    p.add_argument("--plot", metavar="PNG", help="bar chart of images/s")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("scale", help="does data-parallel training over N processes (torch DDP) or devices (Keras "
                                     "on JAX) give one process's weights? SGD steps compared after each step")
    p.add_argument("--backend", default="both", choices=[*BACKENDS, "both"])
    p.add_argument("--nproc", type=_positive, default=2, help="torch: DDP processes (torchrun, gloo on CPU)")
    p.add_argument("--devices", type=_positive, default=2, help="Keras: JAX devices (CPU devices on a CPU machine)")
    p.add_argument("--arch", default="resnet18", choices=list(ARCHS))
    p.add_argument("--stem", choices=list(STEMS), default=None, help="stem kind (default: cifar)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="spec field over the default (cifar stem, widths 16,32,64,128, 10 classes)")
    p.add_argument("--steps", type=_positive, default=3)
    p.add_argument("--batch", type=_positive, default=8, help="global batch")
    p.add_argument("--size", type=_positive, default=16)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--sync-bn", action="store_true", help="torch: SyncBatchNorm (CUDA): compare with the global batch")
    p.add_argument("--device", default="cpu", help="torch device (cpu or cuda)")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    p.set_defaults(func=cmd_scale)


# -- entry point -----------------------------------------------------------------------------------


def _spec_flags(p: argparse.ArgumentParser) -> None:
    from parity.spec import STEMS

    p.add_argument("--num-classes", type=_positive, default=None, help="fc outputs (default: the preset's, or the file's)")
    p.add_argument("--in-channels", type=_positive, default=None, help="input channels (default: 3, or the file's)")
    p.add_argument("--stem", choices=list(STEMS), default=None, help="stem kind (default: the preset's)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="any spec field, e.g. --set padding=same --set bn_eps=1e-3 (repeatable)")


def version_text() -> str:
    """`resnet-parity --version`: this package and every framework it would use (none imported)."""
    from parity.provenance import keras_backend, versions

    found = versions()
    others = ", ".join(f"{k} {v}" for k, v in found.items() if k != "resnet-parity" and v)
    return f"resnet-parity {found['resnet-parity']} ({others}; Keras backend {keras_backend()})"


def build_parser() -> argparse.ArgumentParser:
    from parity.spec import ARCHS, VARIANTS

    parser = argparse.ArgumentParser(
        prog="resnet-parity",
        description="One ResNet spec, a PyTorch and a Keras model built from it, and proof they agree.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("summary", help="per-stage, per-block or per-layer shapes, parameters and MACs from the "
                                       "spec and both models, counted both frameworks' ways")
    p.add_argument("--arch", default="resnet50", choices=list(ARCHS))
    p.add_argument("--size", type=_positive, nargs="+", default=None, metavar="N",
                   help="H or H W (default: the size the variant was written for, 224 for most)")
    p.add_argument("--variant", default="torchvision", choices=list(VARIANTS))
    p.add_argument("--depth", default="stage", choices=["stage", "block", "layer"], help="rows per stage, block or layer")
    p.add_argument("--json", metavar="PATH", help="write every row and total as JSON")
    _spec_flags(p)
    p.add_argument("--backends", type=_backend_list, default=["torch", "keras"],
                   help="built models to count beside the spec (comma list of torch, keras; '' for none)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("check", help="port weights across backends; judge the port in float64 and fp32 against "
                                     "its own rounding noise; name the first wrong block and layer")
    p.add_argument("--arch", default=None,
                   help=f"comma list of architectures, or 'all' (default {DEFAULT_CHECK_ARCHS}; with --weights: "
                        "inferred from the file)")
    p.add_argument("--weights", metavar="FILE",
                   help="check your own checkpoint (.pth/.pt, .safetensors, .npz, .weights.h5, .keras)")
    p.add_argument("--input", nargs="+", metavar="FILE",
                   help="compare on your data: one .npy NCHW float batch, or image files (resized to --size, "
                        "centre-cropped, ImageNet mean/std)")
    p.add_argument("--batch", type=_positive, default=2)
    p.add_argument("--size", type=_positive, nargs="+", default=None, metavar="N",
                   help="H or H W (default: the size the variant was written for, 224 for most)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=_non_negative, default=0, help="seeds weights and input (>= 0)")
    p.add_argument("--variant", default="torchvision", choices=list(VARIANTS))
    _spec_flags(p)
    p.add_argument("--keras-backend", choices=list(KERAS_BACKENDS), default=None,
                   help="run the Keras side on this backend (default: KERAS_BACKEND, else tensorflow)")
    p.add_argument("--no-float64", action="store_true",
                   help="skip the float64 pass (fixed fp32 tolerances decide; for devices without float64)")
    p.add_argument("--uncalibrated", action="store_true",
                   help="seeded weights keep random BN statistics instead of statistics measured on data")
    p.add_argument("--direction", default="both", choices=["torch2keras", "keras2torch", "both"],
                   help="which model is the source (and reference); default both")
    p.add_argument("--allow-tf32", action="store_true", help="let CUDA use TF32 (looser tolerance)")
    p.add_argument("--onnx", action="store_true",
                   help="also export both models to ONNX and compare torch, keras and both ONNX files")
    p.add_argument("--train-steps", type=_non_negative, default=0, metavar="N",
                   help="also compare N SGD steps (momentum, weight decay, BN in training mode), float64")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    p.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("export", help="export one model to ONNX (checked with onnx.checker, written atomically)")
    p.add_argument("--arch", default="resnet50", choices=list(ARCHS))
    p.add_argument("--backend", required=True, choices=["torch", "keras"])
    p.add_argument("--out", required=True, metavar="FILE")
    layout = p.add_mutually_exclusive_group()
    layout.add_argument("--nchw", dest="nchw", action="store_true", default=None,
                        help="Keras graph takes NCHW input, like the torch graph")
    layout.add_argument("--nhwc", dest="nchw", action="store_false", help="Keras graph takes NHWC (default)")
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--size", type=_positive, nargs="+", default=[224], metavar="N",
                   help="example input H or H W for tracing (batch, H and W stay dynamic)")
    p.add_argument("--variant", default="torchvision", choices=list(VARIANTS))
    p.add_argument("--num-classes", type=_positive, default=1000)
    p.add_argument("--in-channels", type=_positive, default=3)
    p.add_argument("--seed", type=int, default=None, help="fill with seeded random weights (default: init)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("lessons", help="measure every PyTorch/Keras difference: naive port vs correct port")
    p.add_argument("--arch", default="resnet18", choices=list(ARCHS))
    p.add_argument("--size", type=_even_size, default=64, help="even input size >= 8 (odd cases use size + 1)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-steps", type=_positive, default=3, help="SGD steps for the training lessons")
    p.add_argument("--only", help="comma list of lesson keys (default: all)")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    p.add_argument("--plot", metavar="PNG", help="plot per-stage drift of the naive ports")
    p.add_argument("--docs", metavar="MD", help="write the framework-differences page (Markdown)")
    p.set_defaults(func=cmd_lessons)

    p = sub.add_parser("convert", help="convert a checkpoint between .pt/.pth, .safetensors, .npz, "
                                       ".weights.h5 and .keras (format from the extension)")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--arch", choices=list(ARCHS), help="architecture (default: inferred from the weights)")
    p.add_argument("--variant", default="torchvision", choices=list(VARIANTS))
    p.add_argument("--num-classes", type=_positive, default=None,
                   help="fc outputs (default: the file's; given, it must match the file)")
    p.add_argument("--in-channels", type=_positive, default=None,
                   help="input channels (default: the file's; given, it must match the file)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_convert)
    _train_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_frameworks()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except (ValueError, RuntimeError, FileExistsError, FileNotFoundError, PermissionError,
            IsADirectoryError, FloatingPointError) as exc:
        print(f"resnet-parity {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
