"""Training curves: accuracy and loss (train and validation, each backend) and the backends' drift."""

from __future__ import annotations

import os
from pathlib import Path

from parity.core.files import save_figure

COLORS = {"torch": "tab:red", "keras": "tab:blue"}


def plot_curves(history: dict[str, list[dict]], drift: list[dict], path: str | os.PathLike[str]) -> Path:
    """Write curves.png: accuracy, loss and (with two backends) the gap between them, per epoch.

    Args:
        history: backend -> history rows (see `parity.training.config.HISTORY_FIELDS`).
        drift: drift rows (see `parity.training.trainer.DRIFT_FIELDS`); empty with one backend.
        path: the PNG to write (atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if drift else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
    for backend, rows in history.items():
        epochs = [r["epoch"] for r in rows]
        for ax, metric in zip(axes, ("acc", "loss")):
            ax.plot(
                epochs,
                [r[f"train_{metric}"] for r in rows],
                color=COLORS[backend],
                linestyle="--",
                marker=".",
                label=f"{backend} train",
            )
            ax.plot(
                epochs,
                [r[f"val_{metric}"] for r in rows],
                color=COLORS[backend],
                marker="o",
                label=f"{backend} validation",
            )
    axes[0].set(title="accuracy", xlabel="epoch", ylabel="accuracy")
    axes[1].set(title="cross-entropy loss", xlabel="epoch", ylabel="loss", yscale="log")
    for ax in axes[:2]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if drift:
        ax = axes[2]
        epochs = [d["epoch"] for d in drift]
        ax.plot(
            epochs,
            [d["val_acc_gap"] * 100 for d in drift],
            marker="o",
            color="tab:purple",
            label="val acc, keras - torch (points)",
        )
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(title="keras vs torch drift (val loss gap: drift.csv)", xlabel="epoch", ylabel="accuracy points")
        twin = ax.twinx()
        twin.plot(
            epochs,
            [d["weight_distance"] for d in drift],
            marker="^",
            color="black",
            label="weight distance ||wk - wt|| / ||wt||",
        )
        twin.set_ylabel("relative weight distance")
        lines = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return save_figure(fig, path)
