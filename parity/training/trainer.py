"""`resnet-parity train`: train one backend or both, from the same weights on the same batches.

A run directory holds:

    run.json                 the configuration, spec, classes and preprocessing of the run
    torch/ keras/            per backend: history.csv, history.json, best.safetensors (best validation
                             accuracy so far, loadable into either backend) and state-E.safetensors
                             (weights + optimizer state after epoch E, for --resume)
    drift.csv, drift.json    with both backends: per-epoch gaps in validation accuracy and loss, and
                             the relative weight-space distance between the two models
    curves.png               accuracy and loss, train and validation, both backends overlaid, and the drift

Batches depend on (seed, epoch) alone (`parity.io.data.batches`), and the state after each epoch holds
everything the next epoch reads, so `--resume` continues an interrupted run to the same history.

Data parallel: under torchrun (`--nproc N`) every process reads the same global batches, trains on its
slice with DistributedDataParallel and only process 0 evaluates and writes; `--devices N` spreads the
Keras model over N devices with keras.distribution (JAX). `--batch` is always the global batch.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter_named
from parity.core.files import atomic_write_text
from parity.core.provenance import keras_backend, versions
from parity.io.data import Dataset, Preprocess, load_data
from parity.io.pipeline import batches, num_batches
from parity.io.weights import initial_weights, set_weights
from parity.spec import ResNetSpec, make_spec
from parity.training.config import DRIFT_FIELDS, HISTORY_FIELDS, TrainConfig
from parity.training.distributed import check_divisible, shard, state_epochs, torchrun_world
from parity.training.progress import EpochTable
from parity.training.run_dir import (
    epochs_done,
    load_state,
    plot_or_skip,
    prepare_run_dir,
    save_best,
    save_state,
    write_history,
)


@dataclass
class Run:
    """What `train` returns: per-backend history rows, drift rows and the run directory."""

    out: Path
    history: dict[str, list[dict]]
    drift: list[dict]
    classes: tuple[str, ...]
    spec: ResNetSpec


# -- placement ---------------------------------------------------------------------------------------


@dataclass
class Placement:
    """Where one backend trains: alone (no engine), or data parallel through `engine`.

    Args:
        engine: the backend's `data_parallel()` engine (resnet_torch.distributed: torchrun and DDP;
            resnet_keras.distributed: keras.distribution on JAX); None for one device.
        rank, processes: this process and how many share each global batch (torchrun).
        device: the device (torch) or devices (Keras) of this process.
        step_model: what train steps call (the DDP wrapper for torch); set once the model exists.
    """

    engine: Any = None
    rank: int = 0
    processes: int = 1
    device: str = "cpu"
    step_model: Any = None

    @property
    def writer(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        return self.engine.all_sum(values) if self.engine is not None else list(values)

    def describe(self, sync_bn: bool, batch: int) -> str | None:
        if self.engine is None:
            return None
        if self.processes > 1:
            norm = "BatchNorm over the global batch (SyncBatchNorm)" if sync_bn else "BatchNorm per process"
            link = "NCCL" if self.device.startswith("cuda") else "gloo"
            return (
                f"{self.engine.ENGINE}: {self.processes} processes ({link}), "
                f"{batch // self.processes} images each per step; {norm}"
            )
        count = len(self.device.split(","))
        return (
            f"{self.engine.ENGINE} on JAX: {count} devices ({self.device}), {batch // count} images each "
            "per step; BatchNorm over the global batch"
        )


def place(config: TrainConfig) -> dict[str, Placement]:
    """Join torchrun's process group or spread Keras over devices, as `config` and the environment ask."""
    rank, world = torchrun_world()
    if config.sync_bn and world == 1:
        raise ValueError(
            "--sync-bn: SyncBatchNorm normalises over the processes of a torchrun run (--nproc N, CUDA); one "
            "process, and Keras on several devices, already normalise over the whole batch: drop --sync-bn"
        )
    placements = {b: Placement(device=config.device) for b in config.backends}
    if world > 1:
        if config.backends != ("torch",):
            raise ValueError(
                "under torchrun only the torch backend trains (--backend torch); Keras spreads over "
                "devices with --devices N in one process"
            )
        check_divisible(config.batch, world, "processes")
        engine = adapter_named("torch").data_parallel()
        rank, world, device = engine.init(config.device)
        placements["torch"] = Placement(engine, rank, world, device)
    if config.devices > 1:
        check_divisible(config.batch, config.devices, "devices")
        engine = adapter_named("keras").data_parallel()
        _, _, devices = engine.init(config.devices)
        placements["keras"] = Placement(engine, device=devices)
    return placements


# -- one epoch ---------------------------------------------------------------------------------------


def evaluate_logits(side: Any, model: Any, data: Dataset, pre: Preprocess, batch: int, multiple: int = 1) -> np.ndarray:
    """Logits of every image of `data`, in order (inference mode).

    Args:
        multiple: pad each batch to a multiple of this (devices that split every batch) and drop the padding.
    """
    out = []
    for x, _ in batches(data, pre, batch, train=False):
        pad = -len(x) % multiple
        logits = side.predict_logits(model, np.concatenate([x, np.repeat(x[-1:], pad, axis=0)]) if pad else x)
        out.append(logits[: len(x)])
    return np.concatenate(out)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of logits against integer labels, in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train_epoch(
    side: Any,
    model: Any,
    optimizer: Any,
    train: Dataset,
    val: Dataset,
    config: TrainConfig,
    epoch: int,
    progress: Callable[[int], None] = lambda n: None,
    placement: Placement | None = None,
) -> dict[str, float] | None:
    """Train one epoch, then validate; the history row (epoch counted from 1), None on a non-writing process.

    Args:
        placement: data parallel: this process trains `placement.step_model` on its shard of each batch,
            and only the writing process validates.
    """
    placement = placement or Placement()
    step_model = placement.step_model if placement.step_model is not None else model
    pre = config.preprocess
    loss_sum, correct, seen = 0.0, 0.0, 0.0  # floats: summed across processes as one list
    start = time.perf_counter()
    for images, labels in batches(train, pre, config.batch, config.seed, epoch, train=True):
        images, labels = shard(images, labels, placement.rank, placement.processes)
        loss, right = side.train_step(step_model, optimizer, images, labels)
        if not math.isfinite(loss):
            raise FloatingPointError(f"{side.NAME}: training loss is {loss} at epoch {epoch + 1}; lower --lr")
        loss_sum += loss * len(labels)
        correct += right
        seen += len(labels)
        progress(1)
    loss_sum, correct, seen = placement.all_sum([loss_sum, correct, seen])
    seconds = time.perf_counter() - start
    if not placement.writer:
        return None
    multiple = len(placement.device.split(",")) if placement.processes == 1 else 1
    logits = evaluate_logits(side, model, val, pre, config.batch, multiple)
    return {
        "epoch": epoch + 1,
        "train_loss": loss_sum / seen,
        "train_acc": correct / seen,
        "val_loss": cross_entropy(logits, val.labels),
        "val_acc": float((logits.argmax(1) == val.labels).mean()),
        "seconds": seconds,
        "images_per_s": seen / seconds,
    }


def weight_distance(a: dict[str, np.ndarray], b: dict[str, np.ndarray], keys: list[str]) -> float:
    """||a - b|| / ||a|| over the trainable tensors `keys` (float64)."""
    num = sum(float(np.sum((a[k].astype(np.float64) - b[k]) ** 2)) for k in keys)
    den = sum(float(np.sum(a[k].astype(np.float64) ** 2)) for k in keys)
    return math.sqrt(num / den) if den else math.nan


def check_data(config: TrainConfig, train_data: Dataset) -> None:
    """Refuse data a run cannot learn from, before anything is written."""
    if len(train_data.classes) < 2:
        raise ValueError(
            f"{config.data}: {len(train_data.classes)} class ({', '.join(train_data.classes)}); a classifier "
            "needs at least two classes (one folder per class)"
        )
    if len(train_data) < config.batch:
        raise ValueError(
            f"--batch {config.batch} is more than the {len(train_data)} training images of {config.data} (training "
            f"drops a partial batch, so no step would run); pass --batch {max(2, len(train_data))} or less"
        )


def train(config: TrainConfig, out: str | os.PathLike[str], resume: bool = False, console: Any = None) -> Run:
    """Train per `config`, writing the run directory `out` (see the module docstring).

    Args:
        config: the run.
        out: run directory (created; an existing run is refused unless `resume`).
        resume: continue the run in `out` from its last complete epoch.
        console: a rich Console for the table and progress bar (None: silent; only process 0 prints).
    """
    out = Path(out)
    train_data, val_data = load_data(config.data, config.size, config.seed)
    check_data(config, train_data)
    spec = make_spec(config.arch, num_classes=len(train_data.classes), in_channels=3, **config.spec)
    placements = place(config)
    writer = all(p.writer for p in placements.values())
    console = console if writer else None
    existed = out.exists()
    try:
        return _train(config, out, resume, console, train_data, val_data, spec, placements, writer)
    except KeyboardInterrupt:
        done = epochs_done(out) if writer else 0
        if writer and not existed and not done:
            shutil.rmtree(out, ignore_errors=True)  # an interrupt before the first epoch leaves no folder behind
            raise KeyboardInterrupt(f"interrupted before epoch 1 ended; {out} was removed") from None
        if done:
            raise KeyboardInterrupt(f"interrupted; {out} holds epoch {done}, continue with --resume") from None
        raise
    finally:
        for p in placements.values():
            if p.engine is not None:
                p.engine.finish()


def _train(
    config: TrainConfig,
    out: Path,
    resume: bool,
    console: Any,
    train_data: Dataset,
    val_data: Dataset,
    spec: ResNetSpec,
    placements: dict[str, Placement],
    writer: bool,
) -> Run:
    # Only the writing process looks at the run directory first; the others learn how far it got.
    done = prepare_run_dir(out, config, resume) if writer else 0
    for p in placements.values():
        if p.engine is not None:
            done = p.engine.broadcast(done)
    pre = config.preprocess
    sides = {b: adapter_named(b) for b in config.backends}
    models, optimizers = {}, {}
    start_weights = initial_weights(spec, config.seed)
    for name, side in sides.items():
        placement = placements[name]
        model = side.build(spec)
        if placement.engine is not None:
            model = placement.engine.convert(model, config.sync_bn, placement.device)
        model = side.to_device(model, placement.device)
        set_weights(model, start_weights)
        models[name] = model
        optimizers[name] = side.make_optimizer(model, config.optimizer, config.lr, config.momentum, config.weight_decay)
    history: dict[str, list[dict]] = {b: [] for b in config.backends}
    drift: list[dict] = []
    for name, side in sides.items():
        if writer:
            (out / name).mkdir(exist_ok=True)
        if done:
            state = out / name / f"state-{done}.safetensors"
            if not state.is_file():
                raise FileNotFoundError(
                    f"--resume: process {placements[name].rank} cannot read {state}; every "
                    "process needs the run directory (shared storage across machines)"
                )
            header = load_state(state, side, models[name], optimizers[name])
            history[name] = header["history"][:done]
            drift = header.get("drift", [])[:done]
        placement = placements[name]
        if placement.engine is not None:
            placement.step_model = placement.engine.wrap(models[name], placement.device)
    if writer and not resume:
        atomic_write_text(
            out / "run.json",
            json.dumps(
                {
                    "config": config.to_dict(),
                    "spec": spec.to_dict(),
                    "classes": list(train_data.classes),
                    "preprocess": pre.to_dict(),
                    "train_images": len(train_data),
                    "val_images": len(val_data),
                    "versions": versions(),
                    "keras_backend": keras_backend() if "keras" in config.backends else None,
                    "parallel": {
                        n: p.describe(config.sync_bn, config.batch)
                        for n, p in placements.items()
                        if p.engine is not None
                    },
                },
                indent=1,
            ),
        )
    trainable = [k for k in spec.canonical_shapes() if not k.endswith(("running_mean", "running_var"))]
    steps = num_batches(len(train_data), config.batch, True)
    notes = [f"{n}: {p.describe(config.sync_bn, config.batch)}" for n, p in placements.items() if p.engine is not None]
    table = EpochTable(console, config, len(train_data), len(val_data), spec, done, notes)
    for epoch in range(done, config.epochs):
        for name, side in sides.items():
            with table.progress(f"{name} epoch {epoch + 1}/{config.epochs}", steps) as advance:
                row = train_epoch(
                    side, models[name], optimizers[name], train_data, val_data, config, epoch, advance, placements[name]
                )
            if row is None:  # not the writing process: train on
                continue
            history[name].append(row)
            table.row(name, row)
            if row["val_acc"] > max((r["val_acc"] for r in history[name][:-1]), default=-1.0):
                save_best(
                    out / name / "best.safetensors",
                    side.get_weights(models[name]),
                    spec,
                    train_data.classes,
                    config,
                    name,
                    row,
                )
        if not writer:
            continue
        if len(sides) > 1:  # the first backend is the reference, the second drifts from it
            a, b = list(sides)[:2]
            ra, rb = history[a][-1], history[b][-1]
            drift.append(
                {
                    "epoch": epoch + 1,
                    "val_acc_gap": rb["val_acc"] - ra["val_acc"],
                    "val_loss_gap": rb["val_loss"] - ra["val_loss"],
                    "weight_distance": weight_distance(
                        sides[a].get_weights(models[a]), sides[b].get_weights(models[b]), trainable
                    ),
                }
            )
            table.drift(drift[-1], a, b)
        for name, side in sides.items():
            save_state(
                out / name / f"state-{epoch + 1}.safetensors",
                side,
                models[name],
                optimizers[name],
                {"epoch": epoch + 1, "history": history[name], "drift": drift},
            )
            write_history(out / name / "history", history[name], HISTORY_FIELDS)
        if drift:
            write_history(out / "drift", drift, DRIFT_FIELDS)
        # Only now is every file of this epoch written: drop the previous epoch's states.
        for name in sides:
            for old in state_epochs(out / name):
                if old < epoch + 1:
                    (out / name / f"state-{old}.safetensors").unlink()
        plot_or_skip(out, history, drift, console)
    return Run(out, history, drift, train_data.classes, spec)
