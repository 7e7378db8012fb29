"""What `train` prints while it runs: a line per backend per epoch, and a transient bar during each epoch."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from parity.spec import ResNetSpec
from parity.training.config import TrainConfig


class EpochTable:
    """One printed line per backend per epoch, a transient progress bar during each epoch."""

    def __init__(
        self,
        console: Any,
        config: TrainConfig,
        n_train: int,
        n_val: int,
        spec: ResNetSpec,
        done: int,
        notes: Sequence[str] = (),
    ):
        self.console = console
        if console is None:
            return
        trainable = spec.param_counts()["trainable"]
        console.print(
            f"{spec.name} ({spec.stem} stem, widths {','.join(map(str, spec.widths))}, "
            f"{trainable:,} parameters) on {config.data}: {n_train} train / {n_val} val images, "
            f"{config.size}x{config.size}, batch {config.batch}, {config.optimizer} lr {config.lr}, "
            f"seed {config.seed}" + (f"; resuming after epoch {done}" if done else "")
        )
        for note in notes:
            console.print(note, markup=False)
        console.print(
            f"{'backend':8} {'epoch':>5} {'train loss':>10} {'train acc':>9} {'val loss':>9} "
            f"{'val acc':>8} {'seconds':>8} {'img/s':>8}"
        )

    def progress(self, label: str, total: int):
        if self.console is None or not self.console.is_terminal:
            return nullcontext(lambda n: None)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        return _Bar(
            Progress(
                TextColumn(label),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            ),
            total,
        )

    def row(self, backend: str, r: dict) -> None:
        if self.console is not None:
            self.console.print(
                f"{backend:8} {r['epoch']:>5} {r['train_loss']:>10.4f} {r['train_acc']:>9.2%} "
                f"{r['val_loss']:>9.4f} {r['val_acc']:>8.2%} {r['seconds']:>8.1f} "
                f"{r['images_per_s']:>8.1f}"
            )

    def drift(self, d: dict, a: str, b: str) -> None:
        if self.console is not None:
            self.console.print(
                f"{'drift':8} {d['epoch']:>5}  {b} - {a}: val acc {d['val_acc_gap']:+.2%}, "
                f"val loss {d['val_loss_gap']:+.4f}; weight distance {d['weight_distance']:.3g}"
            )


class _Bar:
    def __init__(self, progress: Any, total: int):
        self.progress, self.total = progress, total

    def __enter__(self):
        self.progress.start()
        task = self.progress.add_task("", total=self.total)
        return lambda n: self.progress.advance(task, n)

    def __exit__(self, *exc):
        self.progress.stop()
