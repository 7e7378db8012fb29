"""onnxruntime: runs the ONNX files `parity.checks.export.export_onnx` writes (torch.onnx, Keras' export)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from parity.backends.runtimes.interface import Runtime, Session, float32
from parity.core.threads import requested


def providers(device: str, allow_tf32: bool = False) -> list[Any]:
    """onnxruntime providers for a device: CUDA first where asked for and available.

    On CUDA, TF32 is off unless allowed, as for the native models (onnxruntime's CUDA provider
    defaults `use_tf32` to on).
    """
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError("--device cuda, but this onnxruntime has no CUDAExecutionProvider")
        return [("CUDAExecutionProvider", {"use_tf32": "1" if allow_tf32 else "0"}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session(path: str | os.PathLike[str], device: str = "cpu", allow_tf32: bool = False) -> Session:
    """An onnxruntime session of an ONNX file; a file that is missing or not ONNX is refused in one line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = requested() or 0  # 0: onnxruntime's default, every core
    try:
        inner = ort.InferenceSession(str(path), sess_options=options, providers=providers(device, allow_tf32))
    except Exception as exc:  # onnxruntime raises its own exception types
        if isinstance(exc, RuntimeError) and "CUDAExecutionProvider" in str(exc):
            raise
        raise ValueError(f"{path} is not a loadable ONNX model: {exc}") from exc
    name = inner.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(inner.run(None, {name: float32(x)})[0])

    # fp32 is the only precision of an fp32 graph on the CPU provider (no lower-precision default); on CUDA
    # TF32 is its provider option, set above.
    cuda = device == "cuda"
    evidence = f"CUDA provider use_tf32={int(allow_tf32)}" if cuda else "CPU provider, an fp32 graph"
    precision = "tf32" if cuda and allow_tf32 else "fp32"
    return Session(run, precision, evidence, dict(inner.get_modelmeta().custom_metadata_map))


class OnnxRuntime(Runtime):
    """onnxruntime's CPU (or CUDA) provider on an ONNX file."""

    NAME = "onnxruntime"
    LABEL = "onnxruntime"
    DIST = "onnxruntime"
    ROUTES = {"onnx": "onnxruntime"}

    def export(self, source: str, model: Any, folder: Path, shape: tuple[int, ...], dynamic: bool) -> Path:
        """The ONNX file is what onnxruntime runs: nothing more to write."""
        return Path(model)

    def load(self, path: Path, precision: str | None = "fp32") -> Session:
        self.check_precision(precision)
        return session(path)
