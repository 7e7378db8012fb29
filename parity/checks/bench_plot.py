"""The bar chart of `resnet-parity bench --plot`: images/s per runtime, each labelled with its share of the SGEMM peak
(and a low-precision row with its speed-up over fp32)."""

from __future__ import annotations

import os
from pathlib import Path

from parity.checks.bench import DEPLOYED, BenchResult


def plot_bench(result: BenchResult, path: str | os.PathLike[str]) -> Path:
    """A bar chart of images/s per runtime, each bar labelled with its share of the SGEMM peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from parity.core.files import save_figure

    ran = [(t, t.images_per_s, t.of_peak) for t in result.timings if t.images_per_s is not None and t.of_peak]
    if not ran:
        raise ValueError("no runtime ran: nothing to plot")
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(ran) + 1.6))
    colors = [
        "tab:gray"
        if t.kind == "training"
        else "tab:red"
        if t.runtime.startswith("torch")
        else "tab:blue"
        if t.runtime.startswith("keras")
        else "tab:purple"
        if t.runtime in DEPLOYED
        else "tab:green"
        for t, _, _ in ran
    ]
    colors = [color if "@" not in t.runtime else "tab:orange" for color, (t, _, _) in zip(colors, ran)]
    ax.barh([t.runtime for t, _, _ in ran], [speed for _, speed, _ in ran], color=colors)
    for i, (_, speed, share) in enumerate(ran):
        speedup = "" if ran[i][0].speedup is None else f", {ran[i][0].speedup:.2f}x fp32"
        ax.text(speed, i, f" {speed:.1f} img/s, {share:.0%} of peak{speedup}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(speed for _, speed, _ in ran) * 1.45)
    ax.set(
        xlabel="images / s",
        title=f"{result.arch}, batch {result.batch}, {result.size}x{result.size}, {result.precision}, {result.device}, "
        f"{result.threads} threads (SGEMM peak {result.sgemm_peak_gflops:.0f} GFLOP/s)",
    )
    ax.title.set_fontsize(9)
    fig.tight_layout()
    return save_figure(fig, path)
