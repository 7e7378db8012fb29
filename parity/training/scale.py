"""Parity across scale: does data-parallel training over N processes or devices give one process's weights?

torch, DistributedDataParallel under torchrun: each of N processes trains on 1/N of every global
batch and DDP averages the gradients. With SyncBatchNorm, BatchNorm normalises over the global batch,
so N processes must equal one process on the whole batch. Without it each process normalises its own
shard, and DDP broadcasts process 0's BatchNorm buffers at every forward, so N processes must equal
one process that accumulates the gradients of the N shards (BatchNorm per shard, shard 0's running
statistics); how far that is from the global batch is reported beside it.

Keras, keras.distribution.DataParallel on JAX: one program over the global batch sharded across
devices; batch statistics are global by construction, so N devices must equal one.

Both run the same SGD steps from the same seeded weights on the same seeded batches (float64 by
default: only the order of additions can differ), and the worst relative difference of any weight
or running statistic after every step is compared with its tolerance.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter_named
from parity.checks.train_steps import DTYPES, make_batches, worst_tensor
from parity.core import tolerances
from parity.core.provenance import keras_backend
from parity.io.weights import initial_weights, set_weights
from parity.spec import ResNetSpec, make_spec
from parity.training.distributed import host_devices_flag, shard, torchrun_command
from parity.training.trainer import weight_distance


@dataclass(frozen=True)
class ScaleConfig:
    """One scale check.

    Args:
        arch, spec: the network (a preset name and field overrides).
        parts: processes (torch) or devices (Keras) sharing each global batch.
        steps, batch, size: SGD steps on global batches of `batch` images of size x size.
        lr, momentum, weight_decay: torch.optim.SGD's.
        seed: weights and batches.
        dtype: "float64" (isolates the engine from fp32 rounding) or "float32".
        sync_bn: torch: SyncBatchNorm (CUDA only).
        device: "cpu" or "cuda".
    """

    arch: str = "resnet18"
    spec: dict = field(default_factory=lambda: {"stem": "cifar", "widths": (16, 32, 64, 128), "num_classes": 10})
    parts: int = 2
    steps: int = 3
    batch: int = 8
    size: int = 16
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    dtype: str = "float64"
    sync_bn: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.parts < 2:
            raise ValueError(f"a scale check compares N >= 2 processes or devices with one, got {self.parts}")
        if self.batch % self.parts or self.batch // self.parts < 2:
            raise ValueError(
                f"--batch {self.batch} must split into {self.parts} equal shards of at least 2 images "
                "(training-mode BatchNorm)"
            )

    def make_spec(self) -> ResNetSpec:
        return make_spec(self.arch, **self.spec)

    def data(self) -> list[tuple[np.ndarray, np.ndarray]]:
        dtype = np.dtype(self.dtype)
        return [
            (x.astype(dtype), y)
            for x, y in make_batches(self.make_spec(), self.steps, self.batch, self.size, self.size, self.seed)
        ]


@dataclass
class ScaleReport:
    """Worst relative difference per step of the data-parallel run from its single-process equivalent.

    `expected` names that equivalent; `global_weights` and `global_stats` are the distances
    ||a - b|| / ||a|| of the trainable weights and of the BN running statistics from one process on
    the whole batch (rounding only, when BatchNorm is synchronised).
    """

    backend: str
    engine: str
    parts: int
    dtype: str
    expected: str
    worst: list[float]
    worst_tensor: list[str]
    global_weights: list[float]
    global_stats: list[float]
    tolerance: float
    tolerance_name: str
    seconds: dict[str, float]

    @property
    def passed(self) -> bool:
        return max(self.worst) <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def step_gaps(
    expected: list[dict[str, np.ndarray]], got: list[dict[str, np.ndarray]], tolerance: float
) -> tuple[list[float], list[str]]:
    """Per step: the worst max-rel difference over every tensor (inf where NaN/inf masks differ) and its key."""
    diffs = [worst_tensor("step", e, g, list(e), tolerance) for e, g in zip(expected, got)]
    worst = [d.max_rel if d.nan_mismatch == 0 and d.inf_mismatch == 0 else math.inf for d in diffs]
    return worst, [d.stage.split(":", 1)[1] for d in diffs]


def distance(a: dict[str, np.ndarray], b: dict[str, np.ndarray], stats: bool) -> float:
    """||a - b|| / ||a|| over the BN running statistics (`stats`) or over every other tensor."""
    return weight_distance(a, b, [k for k in a if k.endswith(("running_mean", "running_var")) == stats])


# -- torch -------------------------------------------------------------------------------------------


def _model(backend: str, config: ScaleConfig, device: str = "cpu") -> Any:
    side = adapter_named(backend)
    spec = config.make_spec()
    model = side.to_device(side.build(spec, config.dtype), device)
    set_weights(model, initial_weights(spec, config.seed))
    return model


def torch_single(config: ScaleConfig, shards: int) -> list[dict[str, np.ndarray]]:
    """One process: canonical weights after each step, on the global batch (`shards` 1) or as DDP
    without SyncBatchNorm computes it (`shards` N: gradients of N shards averaged, shard 0's statistics)."""
    side = adapter_named("torch")
    model = _model("torch", config, config.device)
    optimizer = side.make_optimizer(model, "sgd", config.lr, config.momentum, config.weight_decay)
    trace = []
    for images, labels in config.data():
        side.accumulated_step(model, optimizer, [shard(images, labels, index, shards) for index in range(shards)])
        trace.append(side.get_weights(model))
    return trace


def torch_rank(config: ScaleConfig, out: Path) -> None:
    """The work of one torchrun process: DDP steps on its shards; process 0 writes every step's weights."""
    from safetensors.numpy import save_file

    from parity.core.files import atomic_write

    side = adapter_named("torch")
    engine = side.data_parallel()
    rank, world, device = engine.init(config.device)
    try:
        model = engine.convert(_model("torch", config, device), config.sync_bn, device)
        optimizer = side.make_optimizer(model, "sgd", config.lr, config.momentum, config.weight_decay)
        ddp = engine.wrap(model, device)
        arrays = {}
        for step, (images, labels) in enumerate(config.data()):
            x, y = shard(images, labels, rank, world)
            side.train_step(ddp, optimizer, x, y)
            arrays.update({f"{step}.{k}": v for k, v in side.get_weights(model).items()})
        if rank == 0:
            atomic_write(out, lambda tmp: save_file(arrays, str(tmp)), force=True)
    finally:
        engine.finish()


def check_torch(config: ScaleConfig) -> ScaleReport:
    """Run `config.parts` DDP processes under torchrun and compare them with one process."""
    import time

    from safetensors.numpy import load_file

    engine = adapter_named("torch").data_parallel()
    if config.sync_bn:
        engine.check_sync_bn(config.device)
    with tempfile.TemporaryDirectory(prefix="resnet-parity-scale-") as folder:
        out = Path(folder) / "ranks.safetensors"
        start = time.perf_counter()
        command = torchrun_command(
            config.parts, ["torch-rank", json.dumps(asdict(config)), str(out)], module="parity.training.scale"
        )
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"torchrun ({config.parts} processes) failed with exit code {done.returncode}:\n{done.stderr[-3000:]}"
            )
        seconds = {"torchrun": time.perf_counter() - start}
        flat = load_file(str(out))
    ddp = [
        {k.split(".", 1)[1]: v for k, v in flat.items() if k.split(".", 1)[0] == str(step)}
        for step in range(config.steps)
    ]
    start = time.perf_counter()
    whole = torch_single(config, 1)
    seconds["one process"] = time.perf_counter() - start
    expected = whole if config.sync_bn else torch_single(config, config.parts)
    name, tolerance = tolerances.scale(config.dtype)
    return ScaleReport(
        "torch",
        engine.ENGINE,
        config.parts,
        config.dtype,
        "one process, global batch"
        if config.sync_bn
        else f"one process accumulating {config.parts} shards (BatchNorm per shard)",
        *step_gaps(expected, ddp, tolerance),
        [distance(w, d, stats=False) for w, d in zip(whole, ddp)],
        [distance(w, d, stats=True) for w, d in zip(whole, ddp)],
        tolerance,
        name,
        seconds,
    )


# -- Keras -------------------------------------------------------------------------------------------


def keras_steps(config: ScaleConfig) -> list[dict[str, np.ndarray]]:
    """Canonical weights after each Keras step (`train_on_batch`) in the current distribution."""
    side = adapter_named("keras")
    with side.dtype_scope(config.dtype):
        model = _model("keras", config)
        optimizer = side.make_optimizer(model, "sgd", config.lr, config.momentum, config.weight_decay)
        trace = []
        for images, labels in config.data():
            side.train_step(model, optimizer, images, labels)
            trace.append(side.get_weights(model))
    return trace


def check_keras_here(config: ScaleConfig) -> ScaleReport:
    """Keras on `config.parts` devices against one device, in this process (JAX backend)."""
    import time

    engine = adapter_named("keras").data_parallel()
    start = time.perf_counter()
    single = keras_steps(config)
    seconds = {"one device": time.perf_counter() - start}
    engine.init(config.parts)
    try:
        start = time.perf_counter()
        spread = keras_steps(config)
        seconds[f"{config.parts} devices"] = time.perf_counter() - start
    finally:
        engine.finish()
    name, tolerance = tolerances.scale(config.dtype)
    return ScaleReport(
        "keras",
        engine.ENGINE + " (JAX)",
        config.parts,
        config.dtype,
        "one device, global batch",
        *step_gaps(single, spread, tolerance),
        [distance(s, d, stats=False) for s, d in zip(single, spread)],
        [distance(s, d, stats=True) for s, d in zip(single, spread)],
        tolerance,
        name,
        seconds,
    )


def check_keras(config: ScaleConfig) -> ScaleReport:
    """Keras on `config.parts` devices against one device; in a child process on JAX unless this one fits."""
    if "keras" in sys.modules and keras_backend() == "jax" and adapter_named("keras").device_count() >= config.parts:
        return check_keras_here(config)
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    env.pop("XLA_FLAGS", None)
    with tempfile.TemporaryDirectory(prefix="resnet-parity-scale-") as folder:
        out = Path(folder) / "report.json"
        done = subprocess.run(
            [sys.executable, "-m", "parity.training.scale", "keras", json.dumps(asdict(config)), str(out)],
            capture_output=True,
            text=True,
            env=env,
        )
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"the Keras scale check (JAX, {config.parts} devices) failed with exit code "
                f"{done.returncode}:\n{done.stderr[-3000:]}"
            )
        return ScaleReport(**{k: v for k, v in json.loads(out.read_text()).items() if k != "passed"})


def check_scale(backend: str, config: ScaleConfig) -> ScaleReport:
    """The scale check of `backend` ("torch" or "keras")."""
    if backend == "torch":
        return check_torch(config)
    if backend == "keras":
        return check_keras(config)
    raise ValueError(f"backend must be torch or keras, got {backend!r}")


def _config(text: str) -> ScaleConfig:
    fields = json.loads(text)
    fields["spec"] = {k: tuple(v) if isinstance(v, list) else v for k, v in fields["spec"].items()}
    return ScaleConfig(**fields)


def main(argv: list[str]) -> None:
    """`python -m parity.training.scale torch-rank CONFIG OUT` (under torchrun) or `keras CONFIG OUT` (child process)."""
    role, text, out = argv
    if role == "torch-rank":
        torch_rank(_config(text), Path(out))
    elif role == "keras":
        config = _config(text)
        host_devices_flag(config.parts)
        report = check_keras_here(config)
        Path(out).write_text(json.dumps(report.to_dict()))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
