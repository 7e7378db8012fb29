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

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import BACKENDS, adapter_named
from parity.core.files import atomic_write, atomic_write_text
from parity.core.provenance import keras_backend, versions
from parity.io.data import Dataset, Preprocess, batches, load_data, num_batches
from parity.io.weights import initial_weights, set_weights
from parity.spec import OPTIMIZERS, ResNetSpec, make_spec
from parity.training.distributed import check_divisible, shard, state_epochs, torchrun_world

HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "images_per_s")
DRIFT_FIELDS = ("epoch", "val_acc_gap", "val_loss_gap", "weight_distance")
RESUME_FIXED = (
    "data",
    "arch",
    "spec",
    "backends",
    "batch",
    "lr",
    "optimizer",
    "momentum",
    "weight_decay",
    "size",
    "seed",
    "normalise",
    "crop_padding",
    "flip",
    "sync_bn",
)
"""Settings a resumed run must share with the run it continues (epochs may grow; device and the number of
processes or devices may change)."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Args:
        data: "digits", "cifar10:PATH" or an ImageFolder path.
        arch: preset name; `spec` holds field overrides (stem, widths, ...).
        backends: which models to train, from the same initial weights.
        epochs, batch, lr: as in every tutorial (constant learning rate).
        optimizer: "sgd" (momentum, coupled weight decay: torch.optim.SGD) or "adam" (torch.optim.Adam's rule).
        momentum, weight_decay: torch's conventions.
        size: images are resized to size x size.
        seed: seeds initial weights, split, batch order and augmentation.
        device: torch device ("cpu", "cuda"); Keras places itself.
        normalise, crop_padding, flip: see `parity.io.data.Preprocess`.
        devices: Keras only: data parallel over this many devices (keras.distribution on JAX).
        sync_bn: torch under torchrun: BatchNorm over the global batch (SyncBatchNorm, CUDA only); one
            process, and Keras on several devices, normalise over the global batch anyway.
    """

    data: str
    arch: str = "resnet18"
    spec: dict = field(default_factory=dict)
    backends: tuple[str, ...] = BACKENDS
    epochs: int = 10
    batch: int = 32
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    size: int = 32
    seed: int = 0
    device: str = "cpu"
    normalise: str = "imagenet"
    crop_padding: int = 0
    flip: bool = False
    devices: int = 1
    sync_bn: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "backends", tuple(self.backends))
        unknown = [b for b in self.backends if b not in BACKENDS]
        if not self.backends or unknown:
            raise ValueError(f"backends must be torch, keras or both, got {', '.join(self.backends) or 'none'}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("epochs", "size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.batch < 2:
            raise ValueError(f"--batch must be >= 2 (BatchNorm cannot train on one image), got {self.batch}")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError("--weight-decay must be >= 0 and --momentum in [0, 1)")
        if self.devices < 1:
            raise ValueError(f"--devices must be >= 1, got {self.devices}")
        if self.devices > 1 and self.backends != ("keras",):
            raise ValueError(
                f"--devices {self.devices} spreads the Keras model over devices (--backend keras); "
                "torch trains on several devices with --nproc N (torchrun)"
            )

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess(self.size, self.normalise, self.crop_padding, self.flip)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "backends": list(self.backends)}


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
    loss_sum, correct, seen = 0.0, 0, 0
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


# -- run directory -----------------------------------------------------------------------------------


def _write_history(folder: Path, rows: list[dict], fields: tuple[str, ...]) -> None:
    atomic_write_text(folder.with_suffix(".json"), json.dumps(rows, indent=1))
    lines = [",".join(fields)] + [
        ",".join(repr(r[f]) if isinstance(r[f], float) else str(r[f]) for f in fields) for r in rows
    ]
    atomic_write_text(folder.with_suffix(".csv"), "\n".join(lines) + "\n")


def _save_state(path: Path, side: Any, model: Any, optimizer: Any, metadata: dict) -> None:
    from safetensors.numpy import save_file

    arrays = {f"model.{k}": np.ascontiguousarray(v) for k, v in side.get_weights(model).items()}
    arrays.update(
        {f"optimizer.{k}": np.ascontiguousarray(v) for k, v in side.optimizer_state(model, optimizer).items()}
    )
    header = {k: json.dumps(v) for k, v in metadata.items()}
    atomic_write(path, lambda tmp: save_file(arrays, str(tmp), metadata=header), force=True)


def _load_state(path: Path, side: Any, model: Any, optimizer: Any) -> dict:
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
        out.mkdir(parents=True, exist_ok=True)
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


def train(config: TrainConfig, out: str | os.PathLike, resume: bool = False, console: Any = None) -> Run:
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
            header = _load_state(state, side, models[name], optimizers[name])
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
            _save_state(
                out / name / f"state-{epoch + 1}.safetensors",
                side,
                models[name],
                optimizers[name],
                {"epoch": epoch + 1, "history": history[name], "drift": drift},
            )
            _write_history(out / name / "history", history[name], HISTORY_FIELDS)
        if drift:
            _write_history(out / "drift", drift, DRIFT_FIELDS)
        # Only now is every file of this epoch written: drop the previous epoch's states.
        for name in sides:
            for old in state_epochs(out / name):
                if old < epoch + 1:
                    (out / name / f"state-{old}.safetensors").unlink()
        _plot_or_skip(out, history, drift, console)
    return Run(out, history, drift, train_data.classes, spec)


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


def _plot_or_skip(out: Path, history: dict, drift: list, console: Any) -> None:
    from parity.training.curves import plot_curves

    try:
        plot_curves(history, drift, out / "curves.png")
    except ImportError:  # matplotlib is the `plot` extra: train without curves
        return


# -- printing ----------------------------------------------------------------------------------------


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
        notes: list[str] = (),
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
