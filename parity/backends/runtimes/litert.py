"""LiteRT (TensorFlow Lite): a `.tflite` from a Keras model (Keras' own `export(format="litert")`), or from a torch
model through litert-torch where it is installed, run by ai-edge-litert's interpreter (XNNPACK delegate)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from parity.backends import adapter
from parity.backends.runtimes.interface import Runtime, Session, float32
from parity.core.threads import requested

LITERT_TORCH = (
    "litert from torch needs litert-torch, which is not installed here: it pulls jax and transformers (about "
    "2.5 GB) and wants torch < 2.15; pip install litert-torch in such an environment"
)


class LiteRT(Runtime):
    """ai-edge-litert's interpreter on a `.tflite` file."""

    NAME = "litert"
    LABEL = "LiteRT"
    DIST = "ai-edge-litert"
    ROUTES = {"keras": "Keras export -> LiteRT", "torch": "litert-torch -> LiteRT"}
    PRECISIONS = ("fp32", "fp16", "int8")
    CONVERTS = ("fp16", "int8")

    def export_lowered(
        self,
        source: str,
        model: Any,
        folder: Path,
        shape: tuple[int, ...],
        dynamic: bool,
        precision: str,
        calibration: list[np.ndarray],
    ) -> Path:
        """Keras' LiteRT export with TensorFlow Lite's own options: fp16 weights, or int8 from a representative
        dataset (full-integer kernels, float input and output)."""
        self.check_precision(precision)
        if source != "keras":
            raise ValueError(f"litert writes {precision} from Keras models here; from torch it is litert-torch's")
        target = folder / f"model.{precision}.tflite"
        adapter(model).export_format(model, "litert", target, shape, dynamic, precision, calibration)
        return target

    def refusal(self, source: str) -> str | None:
        if source == "torch" and importlib.util.find_spec("litert_torch") is None:
            return LITERT_TORCH
        return super().refusal(source)

    def export(self, source: str, model: Any, folder: Path, shape: tuple[int, ...], dynamic: bool) -> Path:
        target = folder / "model.tflite"
        if source == "keras":
            adapter(model).export_format(model, "litert", target, shape, dynamic)
            return target
        import litert_torch  # only where installed (`refusal` says why not)
        import torch

        # litert-torch traces at the example's shape and writes that shape (no open axis): the probes say so
        litert_torch.convert(model.eval(), (torch.zeros(shape),)).export(str(target))
        return target

    def load(self, path: Path, precision: str | None = "fp32") -> Session:
        self.check_precision(precision)
        interpreter = Interpreter(model_path=str(path), num_threads=requested() or None)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]

        def run(x: np.ndarray) -> np.ndarray:
            x = float32(x)
            if tuple(interpreter.get_input_details()[0]["shape"]) != x.shape:
                # a graph fixed to one shape refuses here (its shape_signature has no -1 there)
                interpreter.resize_tensor_input(inp["index"], list(x.shape), strict=True)
                interpreter.allocate_tensors()
            interpreter.set_tensor(inp["index"], x)
            interpreter.invoke()
            return np.asarray(interpreter.get_tensor(out["index"])).copy()

        kinds = {d["dtype"].__name__ for d in interpreter.get_tensor_details()}
        floats = sorted(kind for kind in kinds if "float" in kind)
        if "int8" in kinds:
            return Session(run, "int8", f"int8 tensors in the file, {'/'.join(floats)} at its edges (XNNPACK)")
        if "float16" in kinds:
            return Session(run, "fp16", "float16 weights in the file (XNNPACK delegate)")
        precision_found = "fp32" if floats == ["float32"] else "/".join(floats)
        return Session(run, precision_found, f"every float tensor of the file is {'/'.join(floats)} (XNNPACK delegate)")
