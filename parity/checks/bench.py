"""`resnet-parity bench`: every runtime on one model, weights and batch, measured in one run.

Inference runtimes: torch eager (NCHW and channels_last), `torch.compile`, Keras on TensorFlow
(`tf.function`, and XLA `jit_compile`), Keras on the torch and JAX backends (each in a child process:
a process holds one Keras backend), and every deployment runtime on each model it takes (`DEPLOYED`:
'onnxruntime-torch', 'openvino-keras', ...; `parity.backends.runtimes`), each asked for fp32. Training: one SGD
step of `resnet-parity train` per backend. The in-process runtimes are timed interleaved: one batch of each in
turn, `repeats` rounds, so a busy moment on a shared machine slows all of them alike; each figure is the median.
GFLOP/s counts 2 x the spec's multiply-accumulates; "of peak" divides by this machine's fp32
SGEMM rate (best of torch and numpy matmuls, before and after the runtimes), measured in the same run:
a runtime near or above 100 % runs its convolutions as fast as a plain GEMM of the same operation
count. Absent runtimes are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter_named
from parity.backends.runtimes import RUNTIMES as DEPLOYMENT_RUNTIMES
from parity.backends.runtimes import runtime_named
from parity.core.errors import Unavailable
from parity.io.weights import set_weights
from parity.spec import ResNetSpec, make_spec

INFERENCE = (
    "torch",
    "torch-channels-last",
    "torch-compile",
    "keras-tf",
    "keras-tf-xla",
    "keras-torch",
    "keras-jax",
)
DEPLOYED = tuple(
    f"{name}-{source}"
    for name, entry in DEPLOYMENT_RUNTIMES.items()
    for source in ("torch", "keras")
    if source in entry.takes or "onnx" in entry.takes
)
"""Deployment runtimes on each model they take (directly or through the ONNX file): '<runtime>-<source>'."""
TRAINING = ("train-torch", "train-keras")
RUNTIMES = INFERENCE + DEPLOYED + TRAINING
DEFAULT = INFERENCE + ("onnxruntime-torch", "onnxruntime-keras") + TRAINING
"""What `bench` times unless told: the frameworks, onnxruntime on both exports, training."""
BASELINES = ("torch", "keras-tf")
"""What `bench --runtime ...` times beside the deployment runtimes: each framework as it runs natively."""


def deployed(names: list[str]) -> list[str]:
    """The `DEPLOYED` rows of deployment runtimes `names` ('openvino' -> 'openvino-torch', 'openvino-keras')."""
    return [row for row in DEPLOYED if row.rsplit("-", 1)[0] in names]


SGEMM_SIZE = 2048


@dataclass
class Timing:
    """One runtime's figures (or the reason it was skipped)."""

    runtime: str
    kind: str  # "inference" or "training"
    ms_per_batch: float | None = None
    images_per_s: float | None = None
    gflops: float | None = None
    of_peak: float | None = None
    skipped: str = ""
    note: str = ""
    speedup: float | None = None
    """A low-precision row ('torch@bf16'): its fp32 row's seconds per batch over its own, timed interleaved."""


def repeat_seconds(step: Callable[[], Any], warmup: int, repeats: int) -> list[float]:
    """Seconds of each of `repeats` timed calls of `step`, after `warmup` untimed ones."""
    return interleaved_seconds({"step": step}, warmup, repeats)["step"]


def median_seconds(step: Callable[[], Any], warmup: int, repeats: int) -> float:
    return statistics.median(repeat_seconds(step, warmup, repeats))


def interleaved_seconds(steps: dict[str, Callable[[], Any]], warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds of each call of each step, timed one call of each in turn for `repeats` rounds (after `warmup`
    untimed rounds): on a shared machine a busy moment slows every step alike."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


def sgemm_peak(repeats: int = 8, size: int = SGEMM_SIZE) -> float:
    """This machine's fp32 matrix-multiply rate in GFLOP/s: the best 2048^3 product of torch (MKL) and
    numpy (OpenBLAS), each at its default threads; a peak, so the fastest repetition counts."""
    rng = np.random.default_rng(0)
    an, bn = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    outn = np.empty_like(an)
    seconds = min(
        repeat_seconds(adapter_named("torch").matmul_step(size), 2, repeats)
        + repeat_seconds(lambda: np.matmul(an, bn, out=outn), 2, repeats)
    )
    return 2 * size**3 / seconds / 1e9


# -- runtimes ----------------------------------------------------------------------------------------


def _inference_step(backend: str, spec: ResNetSpec, weights: dict, x: np.ndarray, variant: str) -> Callable[[], Any]:
    side = adapter_named(backend)
    model = side.build(spec)
    set_weights(model, weights)
    return side.inference_step(model, x, variant)


def _deployed_step(name: str, spec: ResNetSpec, weights: dict, x: np.ndarray, folder: Path) -> Callable[[], Any]:
    """'openvino-keras': the Keras model exported to OpenVINO (as `check --runtime` does), loaded asking for fp32."""
    from parity.checks.runtimes import route

    runtime_name, source = name.rsplit("-", 1)
    runtime = runtime_named(runtime_name)  # Unavailable, saying what to install, where it is not installed
    side = adapter_named(source)
    model = side.build(spec)
    set_weights(model, weights)
    way, why = route(runtime, model)
    if way is None:
        raise Unavailable(why)
    place = folder / name
    place.mkdir()
    session = way.load(way.export(model, place, x.shape, unit=False), "fp32")
    inp = way.layout(x)
    return lambda: session.run(inp)


LOW_STEPS = ("torch", "keras-tf", *DEPLOYED)
"""The rows `bench --precision` also times in that precision ('torch@bf16' beside 'torch')."""


def _low_step(
    name: str, precision: str, spec: ResNetSpec, weights: dict, x: np.ndarray, folder: Path
) -> Callable[[], Any]:
    """Row `name` computing in `precision`: a framework under its own low-precision mode (torch autocast, a Keras
    mixed policy), a deployment runtime's file of that precision (`parity.checks.engines.Engine`, as `check` runs it;
    int8 calibrated on the photographs)."""
    from parity.checks.engines import Engine, refusal
    from parity.io.photos import CALIBRATION, photo_inputs

    if name in INFERENCE_STEPS:
        backend, variant = INFERENCE_STEPS[name]
        line = refusal(precision, backend)
        if line:
            raise Unavailable(line)
        side = adapter_named(backend)
        model = side.build(spec)
        set_weights(model, weights)
        step = side.inference_step(model, x, variant)

        def run() -> Any:
            with side.low_precision(model, precision):
                return step()

        return run
    runtime_name, source = name.rsplit("-", 1)
    line = refusal(precision, runtime_name)
    if line:
        raise Unavailable(line)
    model = adapter_named(source).build(spec)
    set_weights(model, weights)
    calibration = [photo_inputs(spec, CALIBRATION, x.shape[2], x.shape[3], len(x))] if precision == "int8" else []
    place = folder / f"{name}@{precision}"
    run_low = Engine(precision, model, runtime_named(runtime_name)).runner(model, x.shape, calibration, place)
    return lambda: run_low(x)


def _train_step(spec: ResNetSpec, weights: dict, x: np.ndarray, backend: str) -> Callable[[], Any]:
    side = adapter_named(backend)
    model = side.build(spec)
    set_weights(model, weights)
    optimizer = side.make_optimizer(model, "sgd", 0.01, 0.9, 5e-4)
    labels = np.arange(len(x), dtype=np.int64) % spec.num_classes
    return lambda: side.train_step(model, optimizer, x, labels)


def _in_child(runtime: str, spec: ResNetSpec, weights_file: Path, x_file: Path, warmup: int, repeats: int) -> float:
    """Seconds per batch of a Keras-on-another-backend runtime, measured in a child process."""
    import importlib.util

    backend = runtime.split("-", 1)[1]
    if importlib.util.find_spec(backend) is None:
        raise Unavailable(f"{backend} is not installed")
    payload = json.dumps(
        {"spec": spec.to_dict(), "weights": str(weights_file), "x": str(x_file), "warmup": warmup, "repeats": repeats}
    )
    result = subprocess.run(
        [sys.executable, "-m", "parity.checks.bench", payload],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"Keras on {backend} failed: {last[:160]}")
    return float(result.stdout.strip().splitlines()[-1])


def _child_main(payload: str) -> None:
    """`python -m parity.checks.bench PAYLOAD`: time `predict_on_batch` under this process's Keras backend."""
    from safetensors.numpy import load_file

    args = json.loads(payload)
    step = _inference_step(
        "keras", ResNetSpec.from_dict(args["spec"]), load_file(args["weights"]), np.load(args["x"]), "predict"
    )
    print(median_seconds(step, args["warmup"], args["repeats"]))


# -- the run -----------------------------------------------------------------------------------------


@dataclass
class BenchResult:
    """Every figure of one bench run (what --json writes)."""

    arch: str
    batch: int
    size: int
    gflop_per_image: float
    sgemm_peak_gflops: float
    threads: int
    device: str
    tf32: str
    timings: list[Timing]
    versions: dict
    precision: str = "fp32"
    """The low precision timed beside fp32 (its rows are 'name@precision'), or fp32."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_bench(
    arch: str = "resnet50",
    batch: int = 8,
    size: int = 224,
    runtimes: list[str] | None = None,
    warmup: int = 2,
    repeats: int = 5,
    progress: Callable[[str], None] = lambda name: None,
    spec: ResNetSpec | None = None,
    sgemm_size: int = SGEMM_SIZE,
    precision: str = "fp32",
) -> BenchResult:
    """Measure `runtimes` (default all) on seeded weights and one seeded batch.

    Args:
        arch: preset architecture (or pass `spec`).
        batch, size: the input batch (size x size).
        runtimes: names from `RUNTIMES`.
        warmup, repeats: untimed and timed repetitions per runtime.
        progress: called with each runtime's name before it runs.
        spec: use this spec instead of the preset.
        sgemm_size: matrix size of the SGEMM peak measurement (smaller: faster, a lower peak).
        precision: also time each row of `LOW_STEPS` in 'bf16', 'fp16' or 'int8' ('torch@bf16'), interleaved with its
            fp32 row; its `speedup` is the ratio.
    """
    from parity.core.provenance import versions
    from parity.io.weights import random_weights

    chosen = list(DEFAULT) if not runtimes else list(runtimes)
    if precision != "fp32":
        chosen = [row for name in chosen for row in ((name, f"{name}@{precision}") if name in LOW_STEPS else (name,))]
    unknown = [r for r in chosen if r.split("@")[0] not in RUNTIMES]
    if unknown:
        raise ValueError(f"unknown runtime(s) {', '.join(unknown)}; choose from {', '.join(RUNTIMES)}")
    if batch < 2 and any(r in TRAINING for r in chosen):
        raise ValueError("--batch must be >= 2 to time a training step (BatchNorm in training mode)")
    spec = spec or make_spec(arch)
    weights = random_weights(spec, 0)
    x = np.random.default_rng(0).standard_normal((batch, spec.in_channels, size, size)).astype(np.float32)
    gflop = 2 * spec.macs(size, size) / 1e9
    progress("SGEMM peak")
    peak = sgemm_peak(size=sgemm_size)
    timings = []
    seconds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        weights_file, x_file = folder / "weights.safetensors", folder / "x.npy"
        steps: dict[str, Callable[[], Any]] = {}
        for name in chosen:
            progress(name)
            try:
                if name in ("keras-torch", "keras-jax"):
                    if not weights_file.exists():
                        from safetensors.numpy import save_file

                        save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(weights_file))
                        np.save(x_file, x)
                    seconds[name] = _in_child(name, spec, weights_file, x_file, warmup, repeats)
                elif "@" in name:
                    steps[name] = _low_step(name.split("@")[0], precision, spec, weights, x, folder)
                else:
                    steps[name] = _make_step(name, spec, weights, x, folder)
            except Unavailable as reason:  # a runtime that cannot run here says why
                skipped[name] = str(reason)
            except ImportError as exc:
                skipped[name] = f"{exc.name} is not installed"
        if steps:
            progress(f"{len(steps)} runtimes, interleaved")
            times = interleaved_seconds(steps, warmup, repeats)
            seconds.update({name: statistics.median(values) for name, values in times.items()})
        for name in chosen:
            kind = "training" if name in TRAINING else "inference" if "@" not in name else name.split("@")[1]
            if name in skipped:
                timings.append(Timing(name, kind, skipped=skipped[name]))
                continue
            flops = gflop * batch * (3 if kind == "training" else 1)  # backward ~ 2x forward
            timings.append(
                Timing(
                    name,
                    kind,
                    seconds[name] * 1e3,
                    batch / seconds[name],
                    flops / seconds[name],
                    note="GFLOP/s counts forward + 2x for backward" if kind == "training" else "",
                )
            )
    # Measured again at the end: on a shared machine a busy moment at the start would understate the peak.
    progress("SGEMM peak")
    peak = max(peak, sgemm_peak(size=sgemm_size))
    for t in timings:
        if t.gflops is not None:
            t.of_peak = t.gflops / peak
        base = t.runtime.split("@")[0]
        if "@" in t.runtime and t.ms_per_batch and base in seconds:
            t.speedup = seconds[base] * 1e3 / t.ms_per_batch
    threads = adapter_named("torch").threads()
    return BenchResult(
        spec.name, batch, size, gflop, peak, threads, "cpu", "n/a on CPU", timings, versions(), precision
    )


INFERENCE_STEPS = {
    "torch": ("torch", "eager"),
    "torch-channels-last": ("torch", "channels-last"),
    "torch-compile": ("torch", "compile"),
    "keras-tf": ("keras", "tf-function"),
    "keras-tf-xla": ("keras", "xla"),
}
"""In-process inference runtimes: (backend, the adapter's `inference_step` variant)."""


def _make_step(name: str, spec: ResNetSpec, weights: dict, x: np.ndarray, folder: Path) -> Callable[[], Any]:
    if name in INFERENCE_STEPS:
        return _inference_step(*INFERENCE_STEPS[name][:1], spec, weights, x, INFERENCE_STEPS[name][1])
    if name in DEPLOYED:
        return _deployed_step(name, spec, weights, x, folder)
    return _train_step(spec, weights, x, name.split("-")[1])


if __name__ == "__main__":
    _child_main(sys.argv[1])
