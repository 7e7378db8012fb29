"""`resnet-parity summary`: shapes, parameters and MACs per stage, block or layer, from the spec and both models."""

from __future__ import annotations

import argparse
import json
from typing import Any

from parity.cli import options, output


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_arch(p, default="resnet50")
    options.add_size(p, pair=True)
    p.add_argument(
        "--depth", default="stage", choices=["stage", "block", "layer"], help="rows per stage, block or layer"
    )
    options.add_json(p)
    options.add_spec_overrides(p)
    p.add_argument(
        "--backends",
        type=options.backend_list,
        default=["torch", "keras"],
        help="built models to count beside the spec (comma list of torch, keras; '' for none)",
    )


def stage_of(layer_name: str) -> str:
    """'conv1' / 'conv1.3' / 'bn1' / 'maxpool' -> 'stem'; 'layer2.0.conv1' -> 'layer2'; 'fc' -> 'fc'."""
    head = layer_name.split(".")[0]
    return "stem" if head in ("conv1", "bn1", "maxpool") else head


def built_stage_counts(spec, backend: str) -> dict[str, int] | str:
    """Per-stage trainable parameters of a built model, or a reason it could not be built."""
    from parity.backends import adapter_named

    try:
        side = adapter_named(backend)
        model = side.build(spec)
        groups = {"stem": [model.conv1] + ([] if spec.preact else [model.bn1])}
        groups.update({f"layer{i + 1}": [s] for i, s in enumerate(model.stages)})
        if spec.preact:
            groups["post_bn"] = [model.post_bn]
        if spec.num_classes:
            groups["fc"] = [model.fc]
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


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.core.files import atomic_write_text
    from parity.spec import input_size, layout_name

    spec = options.spec_from_args(args.arch, args)
    height, width = options.size(args.size or [input_size(spec.variant)])
    rows = spec.layer_table(height, width)
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault(
            group_of(row.name, args.depth),
            {
                "kind": row.kind,
                "output": row.output_shape,
                "params": 0,
                "macs": 0,
                "kernel": row.kernel,
                "stride": row.stride,
                "padding": row.padding,
            },
        )
        group["params"] += row.params
        group["macs"] += row.macs
        if ".downsample" not in row.name:
            group["output"] = row.output_shape
    built = {}
    if args.depth == "stage":
        for backend in args.backends:
            with output.step(f"building {spec.name} in {backend}"):
                built[backend] = built_stage_counts(spec, backend)
    built_totals = {b: built_totals_of(spec, b) for b in args.backends}
    title = f"{spec.name} ({layout_name(spec)}) at {spec.in_channels}x{height}x{width}, by {args.depth}"
    table = Table(title=title)
    columns = [args.depth, "output (C, H, W)"] + (["kernel / stride / pad"] if args.depth == "layer" else [])
    columns += ["params (spec)"] + [f"params ({b})" for b in built] + ["MACs"]
    for col in columns:
        table.add_column(col, justify="left" if col in (args.depth, "output (C, H, W)") else "right")
    for name, group in groups.items():
        cells = [name, str(group["output"])]
        if args.depth == "layer":
            cells.append(
                "-" if group["kernel"] is None else f"{group['kernel']} / {group['stride']} / {group['padding']}"
            )
        cells.append(f"{group['params']:,}")
        for counts in built.values():
            cells.append(f"{counts[name]:,}" if isinstance(counts, dict) else "-")
        table.add_row(*cells, f"{group['macs'] / 1e6:,.1f} M")
    totals = spec.param_counts()
    cells = ["total", ""] + ([""] if args.depth == "layer" else []) + [f"{totals['trainable']:,}"]
    for counts in built.values():
        cells.append(f"{sum(counts.values()):,}" if isinstance(counts, dict) else counts)
    table.add_row(*cells, f"{spec.macs(height, width) / 1e9:,.3f} G", style="bold")
    console = output.console()
    console.print(table)
    console.print(
        f"Keras (model.summary()): Total params: {totals['keras_total']:,}, Trainable params: "
        f"{totals['keras_trainable']:,}, Non-trainable params: {totals['keras_non_trainable']:,} "
        "(BatchNorm moving mean and variance)"
    )
    console.print(
        f"PyTorch: parameters(): {totals['torch_parameters']:,}; buffers(): {totals['torch_buffers']:,} "
        "(running_mean, running_var and one num_batches_tracked per BatchNorm)"
    )
    mismatched = [
        b for b, c in built.items() if isinstance(c, dict) and c != {k: v["params"] for k, v in groups.items()}
    ]
    mismatched += [
        b
        for b, t in built_totals.items()
        if isinstance(t, dict) and any(t[k] != totals[k] for k in t) and b not in mismatched
    ]
    if args.json:
        payload = {
            "spec": spec.to_dict(),
            "input": [spec.in_channels, height, width],
            "depth": args.depth,
            "rows": [
                {"name": name, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}}
                for name, g in groups.items()
            ],
            "totals": totals,
            "macs": spec.macs(height, width),
            "built": built_totals,
        }
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
