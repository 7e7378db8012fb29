"""What a parity figure was measured with: package versions, Keras backend, device, dtype, TF32, seed.

Versions come from the installed distributions (`importlib.metadata`), so collecting them imports no
framework.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

from parity.core.threads import available_cpus, requested

PACKAGES = {
    "resnet-parity": ("resnet-parity",),
    "torch": ("torch",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "jax": ("jax",),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "numpy": ("numpy",),
}
"""Reported name -> distribution names to try, in order."""


def version_of(name: str) -> str | None:
    """Installed version of a reported package, or None when it is not installed."""
    for dist in PACKAGES.get(name, (name,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def keras_backend() -> str:
    """The Keras backend in use (or that `import keras` would pick)."""
    keras = sys.modules.get("keras")
    if keras is not None:
        return str(keras.backend.backend())
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def versions() -> dict[str, str | None]:
    """Every reported package's version (None: not installed) and Python's."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    found.update({name: version_of(name) for name in PACKAGES})
    return found


def collect(
    device: str = "cpu",
    dtype: str = "float32",
    tf32: bool = False,
    seed: int | None = None,
    device_name: str | None = None,
) -> dict[str, Any]:
    """The provenance record every report carries.

    Args:
        device: "cpu" or "cuda".
        dtype: the dtype of the compared run ("float32"; the float64 pass is reported beside it).
        tf32: whether TF32 was allowed for CUDA matmuls and convolutions.
        seed: the seed of weights and input, when they were generated.
        device_name: a readable device name (e.g. the GPU model), when known.
    """
    return {
        "versions": versions(),
        "keras_backend": keras_backend(),
        "device": device,
        "device_name": device_name or device,
        "machine": platform.machine(),
        "dtype": dtype,
        "tf32": bool(tf32),
        "seed": seed,
        "threads": requested() or available_cpus(),
    }


def header(record: dict[str, Any]) -> str:
    """One line for a table title: versions, backend, device, dtype, TF32, threads, seed."""
    v = record["versions"]
    parts = [f"{name} {v[name]}" for name in ("torch", "tensorflow", "keras", "jax", "onnxruntime") if v.get(name)]
    parts.append(f"Keras backend {record['keras_backend']}")
    parts.append(f"device {record['device_name']}")
    parts.append(f"{record['dtype']}{' (TF32 allowed)' if record['tf32'] else ''}")
    if record.get("threads"):
        parts.append(f"{record['threads']} threads")
    if record.get("seed") is not None:
        parts.append(f"seed {record['seed']}")
    return ", ".join(parts)
