"""A training run's directory: run.json's settings, each backend's per-epoch states and the history files,
written atomically; what a resumed run finds there."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from parity.core.files import atomic_write, atomic_write_text, make_writable_folder
from parity.io.weights import set_weights
from parity.spec import ResNetSpec
from parity.training.config import RESUME_FIXED, TrainConfig
from parity.training.distributed import state_epochs


def write_history(folder: Path, rows: list[dict], fields: tuple[str, ...]) -> None:
    atomic_write_text(folder.with_suffix(".json"), json.dumps(rows, indent=1))
    lines = [",".join(fields)] + [
        ",".join(repr(r[f]) if isinstance(r[f], float) else str(r[f]) for f in fields) for r in rows
    ]
    atomic_write_text(folder.with_suffix(".csv"), "\n".join(lines) + "\n")


def save_state(path: Path, side: Any, model: Any, optimizer: Any, metadata: dict) -> None:
    from safetensors.numpy import save_file

    arrays = {f"model.{k}": np.ascontiguousarray(v) for k, v in side.get_weights(model).items()}
    arrays.update(
        {f"optimizer.{k}": np.ascontiguousarray(v) for k, v in side.optimizer_state(model, optimizer).items()}
    )
    header = {k: json.dumps(v) for k, v in metadata.items()}
    atomic_write(path, lambda tmp: save_file(arrays, str(tmp), metadata=header), force=True)


def load_state(path: Path, side: Any, model: Any, optimizer: Any) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        header = {k: json.loads(v) for k, v in (handle.metadata() or {}).items()}
        arrays = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 - a safetensors handle, not a dict
    set_weights(model, {k[len("model.") :]: v for k, v in arrays.items() if k.startswith("model.")})
    side.load_optimizer_state(
        model, optimizer, {k[len("optimizer.") :]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    )
    return header


def stored_config(out: Path) -> dict[str, Any]:
    """The settings a run directory was started with (run.json's config); {} when it holds no run."""
    run_file = out / "run.json"
    if not run_file.is_file():
        return {}
    try:
        stored = json.loads(run_file.read_text()).get("config", {})
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(f"{run_file} is not a run's JSON; choose another --out") from None
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return {k: v for k, v in stored.items() if k in known}


def prepare_run_dir(out: Path, config: TrainConfig, resume: bool) -> int:
    """Create or check the run directory; the number of epochs already done (0 for a new run)."""
    run_file = out / "run.json"
    if not resume:
        # A run that never finished an epoch holds nothing to continue: it does not block a new one.
        if run_file.exists() and epochs_done(out):
            raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        make_writable_folder(out, "--out")
        return 0
    if not run_file.exists():
        raise FileNotFoundError(f"--resume: no run at {out} (no run.json)")
    stored = json.loads(run_file.read_text())["config"]
    now = json.loads(json.dumps(config.to_dict()))  # tuples as JSON lists, as stored
    changed = [k for k in RESUME_FIXED if stored.get(k) != now[k]]
    if changed:
        raise ValueError(
            f"--resume: {', '.join(f'{k} was {stored.get(k)!r}, now {now[k]!r}' for k in changed)}"
            f"; a resumed run must use the settings of {out}"
        )
    return epochs_done(out, config.backends)


def epochs_done(out: Path, backends: Sequence[str] | None = None) -> int:
    """The last epoch every backend folder (`backends`, default all) of a run directory holds a state for (0: none)."""
    if backends is not None:
        folders = [out / b for b in backends]
    else:
        folders = [f for f in out.iterdir() if f.is_dir()] if out.is_dir() else []
    done = [set(state_epochs(f)) for f in folders]
    common = set.intersection(*done) if done else set()
    return max(common) if common else 0


def save_best(
    path: Path, weights: dict, spec: ResNetSpec, classes: tuple[str, ...], config: TrainConfig, backend: str, row: dict
) -> None:
    """best.safetensors: canonical weights + spec, classes, preprocessing, data, seed, epoch and metrics in its header."""
    from parity.io.checkpoints import write_checkpoint

    write_checkpoint(
        weights,
        path,
        spec,
        force=True,
        metadata={
            "classes": list(classes),
            "preprocess": config.preprocess.to_dict(),
            "trained_with": backend,
            "data": config.data,
            "seed": config.seed,
            "epoch": row["epoch"],
            "metrics": {k: row[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")},
        },
    )


def plot_or_skip(out: Path, history: dict, drift: list, console: Any) -> None:
    from parity.training.curves import plot_curves

    try:
        plot_curves(history, drift, out / "curves.png")
    except ImportError:  # matplotlib is the `plot` extra: train without curves
        return
