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

        floats = sorted(
            {d["dtype"].__name__ for d in interpreter.get_tensor_details() if "float" in d["dtype"].__name__}
        )
        precision_found = "fp32" if floats == ["float32"] else "/".join(floats)
        return Session(run, precision_found, f"every float tensor of the file is {'/'.join(floats)} (XNNPACK delegate)")
