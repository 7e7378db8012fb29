"""The framework-differences page and its plot, generated from one `run_lessons` measurement."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from parity.core.files import save_figure
from parity.core.formatting import fmt_sci

FLOOR = 1e-17
"""Where a zero drift is drawn on the log axis."""


def plot_lessons(findings: list[Any], path: str | os.PathLike[str], title: str = "") -> Path:
    """PNG: per-stage drift of every naive port whose outputs drift, beside the correct port and tolerance.

    Two panels: inference in float32, and eval outputs after the training lessons' SGD steps in float64
    (each with its own tolerance).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from parity.core import tolerances

    drawn = [f for f in findings if f.naive is not None and f.naive.metric == "outputs" and len(f.naive.stages) > 1]
    panels = [
        ("inference, float32", [f for f in drawn if f.tolerance != tolerances.TRAIN_STEP_FP64]),
        ("eval after SGD steps, float64", [f for f in drawn if f.tolerance == tolerances.TRAIN_STEP_FP64]),
    ]
    panels = [(name, group) for name, group in panels if group]
    low = [f for f in findings if f.naive is not None and f.naive.metric == "vs float64"]
    if not panels and not low:
        raise ValueError("no lesson with per-stage output drift in these findings: nothing to plot")
    columns = max(len(panels), 1)
    low_height = 0.6 * len(low) + 1.4 if low else 0.0
    fig = plt.figure(figsize=(7 * columns, (5.5 if panels else 0) + low_height))
    grid = fig.add_gridspec(2, columns, height_ratios=[5.5 if panels else 0.01, low_height or 0.01])
    axes = [[fig.add_subplot(grid[0, i]) for i in range(len(panels))]]
    if low:  # a row of its own below: its labels are long
        _plot_low_precision(fig.add_subplot(grid[1, :]), low)
    for ax, (name, group) in zip(axes[0], panels):
        stages = list(group[0].naive.stages)
        xs = range(len(stages))
        for f in group:
            ys = [max(f.naive.stages.get(s, math.nan), FLOOR) for s in stages]
            ax.plot(xs, ys, marker="o", label=f"naive: {f.title} ({f.case})")
        ax.plot(
            xs,
            [max(group[0].correct.stages.get(s, math.nan), FLOOR) for s in stages],
            color="black",
            linewidth=2.5,
            marker="s",
            label="this project's port",
        )
        ax.axhline(group[0].tolerance, color="red", linestyle="--", label=f"tolerance {group[0].tolerance:.0e}")
        ax.set_yscale("log")
        ax.set_xticks(list(xs), stages)
        ax.set_ylabel("max |torch - keras| / max |torch|")
        ax.set_title(name)
        ax.grid(True, which="major", alpha=0.3)
        # The inference panel's lower right is empty (ports agree to 1e-7, naive ones drift above 1e-4).
        ax.legend(fontsize=7, loc="lower right" if ax is axes[0][0] and len(panels) > 1 else "center right")
    fig.suptitle(title or "per-stage drift from the torch model")
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_low_precision(ax: Any, findings: list[Any]) -> None:
    """Bars: each precision lesson's naive and handled error against the float64 truth (inf drawn at the edge)."""
    finite = [v for f in findings for v in (f.naive.max_rel, f.correct.max_rel) if math.isfinite(v) and v > 0]
    edge = max(finite) * 30
    labels = [f"{f.title}: {f.case}" for f in findings]
    ys = range(len(findings))
    for offset, color, name, values in (
        (-0.2, "tab:orange", "naive", [f.naive.max_rel for f in findings]),
        (0.2, "black", "handled", [f.correct.max_rel for f in findings]),
    ):
        drawn = [v if math.isfinite(v) else edge for v in values]
        ax.barh([y + offset for y in ys], drawn, height=0.38, color=color, label=name)
        for y, value, bar in zip(ys, values, drawn):
            ax.text(bar, y + offset, f" {value:.1e}" if math.isfinite(value) else " inf", va="center", fontsize=7)
    ax.set_xscale("log")
    left = min(finite) / 3
    ax.set_xlim(left, edge * 20)
    for y, label in zip(ys, labels):  # above each pair of bars: long labels would squeeze the panels above
        ax.text(left * 1.05, y - 0.43, label, fontsize=7, va="bottom")
    ax.set_yticks([])
    ax.set_ylim(len(findings) - 0.5, -1.0)
    ax.set_xlabel("max |low precision - float64| / max |float64| at the logits")
    ax.set_title("low precision, on photographs")
    ax.legend(fontsize=7, loc="lower right")


def lessons_markdown(
    findings: list[Any], columns: list[str], rows: list[list[str]], command: str, plot: str | None = None
) -> str:
    """The whole docs/framework-differences.md page."""
    from parity.checks.lessons import LESSONS

    def table(cols, body) -> str:
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join(lines)

    out = [
        "# PyTorch vs Keras: every difference, measured",
        "",
        f"Generated by `{command}`; every figure below comes from that one run (do not edit by hand).",
        "Each difference is left unhandled in an otherwise correct Keras port (the *naive* port), and the",
        "drift from the torch model is measured beside this project's port in the same run.",
        "Drift is `max |torch - keras| / max |torch|` per stage (stem, layer1..layer4, logits).",
        "",
        table(columns, rows),
        "",
    ]
    if plot:
        out += [f"![per-stage drift of the naive ports]({os.path.basename(plot)})", ""]
    seen = []
    for f in findings:
        if f.lesson in seen:
            continue
        seen.append(f.lesson)
        lesson = LESSONS[f.lesson]
        out += [f"## {lesson.title}", "", lesson.why, "", f"Handled in `{lesson.handled}`.", ""]
        for finding in (x for x in findings if x.lesson == f.lesson):
            if finding.naive is None:
                out.append(f"- {finding.case}: skipped ({finding.skipped}).")
                continue
            first = finding.naive.first_divergent or "none"
            note = f" ({finding.naive.note})" if finding.naive.note else ""
            out.append(
                f"- {finding.case}: naive port drifts {fmt_sci(finding.naive.max_rel)} "
                f"(first divergent stage: {first}){note}; this project's port "
                f"{fmt_sci(finding.correct.max_rel)}."
            )
        out += [
            "",
            "PyTorch side:",
            "",
            "```python",
            snippet(lesson.torch_code),
            "```",
            "",
            "Keras side:",
            "",
            "```python",
            snippet(lesson.keras_code),
            "```",
            "",
        ]
    out += ["Regenerate:", "", "```bash", command, "```", ""]
    return "\n".join(out)


def snippet(ref: str) -> str:
    """Source of `module:qualname` (e.g. 'resnet_keras.layers:make_pad'), read from the file (nothing imported)."""
    import ast
    import importlib.util

    module_name, qualname = ref.split(":")
    top, *inner = module_name.split(".")
    found = importlib.util.find_spec(top)  # a top-level package is found without importing it (a submodule is not)
    if found is None or found.origin is None:
        raise ValueError(f"no module {module_name!r}")
    path = Path(found.origin).parent.joinpath(*inner)
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    if not path.is_file():
        raise ValueError(f"no module {module_name!r} (no {path})")
    source = path.read_text(encoding="utf-8")
    node: Any = ast.parse(source)
    for part in qualname.split("."):
        node = next(n for n in node.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part)
    lines = source.splitlines()
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    indent = len(lines[start - 1]) - len(lines[start - 1].lstrip())
    return "\n".join(line[indent:] for line in lines[start - 1 : node.end_lineno]).rstrip()
