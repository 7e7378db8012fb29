"""OpenVINO: its IR (.xml + .bin) from an ONNX file, from a torch model (`openvino.convert_model` on its
`torch.export` program) or from a Keras model (Keras' own `export(format="openvino")`), run on its CPU plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from parity.backends import adapter
from parity.backends.runtimes.interface import Runtime, Session, float32
from parity.core.threads import requested

HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
"""Canonical precision -> OpenVINO's INFERENCE_PRECISION_HINT value."""

FROM_HINT = {value: key for key, value in HINTS.items()}


class OpenVINO(Runtime):
    """OpenVINO's CPU plugin on its IR.

    # FRAMEWORK: precision — OpenVINO's CPU plugin computes in bf16 by default on a CPU with AVX512-BF16 or AMX
    # (its INFERENCE_PRECISION_HINT); fp32 is asked for explicitly, and the default is reported beside it.
    """

    NAME = "openvino"
    LABEL = "OpenVINO"
    DIST = "openvino"
    PRECISIONS = ("fp32", "bf16", "fp16")
    ROUTES = {"torch": "torch.export -> OpenVINO", "keras": "Keras export -> OpenVINO", "onnx": "ONNX -> OpenVINO"}

    def export(self, source: str, model: Any, folder: Path, shape: tuple[int, ...], dynamic: bool) -> Path:
        target = folder / "model.xml"
        if source == "keras":
            adapter(model).export_format(model, "openvino", target, shape, dynamic)
            return target
        if source == "torch":
            converted = ov.convert_model(adapter(model).export_program(model, shape, dynamic))
        else:
            converted = ov.Core().read_model(str(model))
        ov.save_model(converted, str(target), compress_to_fp16=False)  # fp16 weights are asked for, not assumed
        return target

    def load(self, path: Path, precision: str | None = "fp32") -> Session:
        self.check_precision(precision)
        core = ov.Core()
        config: dict[str, Any] = {}
        if precision is not None:
            config["INFERENCE_PRECISION_HINT"] = HINTS[precision]
        if requested():
            config["INFERENCE_NUM_THREADS"] = requested()
        compiled = core.compile_model(str(path), "CPU", config)
        hint = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        request = compiled.create_infer_request()

        def run(x: np.ndarray) -> np.ndarray:
            return np.asarray(request.infer([float32(x)])[0]).copy()

        return Session(
            run, FROM_HINT.get(hint, hint), f"INFERENCE_PRECISION_HINT={hint}, the compiled model's property"
        )

    def default_precision(self) -> str:
        """What the CPU plugin computes in when not asked (its own property on this machine)."""
        hint = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
        return FROM_HINT.get(hint, hint)
