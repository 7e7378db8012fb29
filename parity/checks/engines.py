"""How one model computes in a low precision: in its own framework (torch autocast, a Keras mixed policy) or as a
runtime's file of that precision (onnxruntime's fp16 graph and int8 QDQ file; OpenVINO asked for bf16 or fp16, or
reading the int8 QDQ file); and, in one line, why an engine cannot (`refusal`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter
from parity.backends.runtimes import missing, runtime_named
from parity.checks.runtimes import Route, route
from parity.core.errors import Unavailable
from parity.core.logs import quiet_imports
from parity.core.signals import held

FRAMEWORK_PRECISIONS = ("bf16", "fp16")
"""What torch (autocast) and Keras (a mixed policy) compute in themselves; int8 is a runtime's file."""
RUNTIME_PRECISIONS = {"onnxruntime": ("fp16", "int8"), "openvino": ("bf16", "fp16", "int8"), "litert": ("fp16", "int8")}
"""The runtimes this check builds low-precision files for (int8 for OpenVINO: onnxruntime's QDQ file, read by it;
LiteRT: the TensorFlow Lite converter's fp16 weights and int8 file, from Keras models)."""


class Engine:
    """How one model runs in one precision: its framework itself, or a runtime's file of that precision.

    Args:
        precision: 'bf16', 'fp16' or 'int8'.
        model: this project's torch or Keras model.
        runtime: a `parity.backends.runtimes` runtime, or None for the model's own framework.
    """

    def __init__(self, precision: str, model: Any, runtime: Any = None):
        self.precision, self.model, self.runtime = precision, model, runtime
        self.side = adapter(model)
        self.name = runtime.NAME if runtime is not None else self.side.NAME
        self.seen = ""
        """The precision the runtime said it computed in, and where that was read (after the first `runner`)."""

    def how(self) -> str:
        """The way the model reaches this precision, in a few words."""
        if self.runtime is None:
            return self.side.LOW_PRECISION[self.precision]
        lowered = {"int8": "int8 QDQ per channel", "fp16": "fp16 graph"}.get(self.precision, "")
        if self.runtime.NAME == "openvino" and self.precision != "int8":
            lowered = f"INFERENCE_PRECISION_HINT={self.precision}"
        if self.precision in self.runtime.CONVERTS:
            lowered = {"int8": "int8 from a representative dataset", "fp16": "fp16 weights"}[self.precision]
        return f"{self._route().text()}, {lowered}"

    @property
    def via_qdq(self) -> bool:
        """int8 on a runtime that reads onnxruntime's QDQ file (OpenVINO) rather than writing int8 itself."""
        runtime = self.runtime
        return self.precision == "int8" and runtime.NAME != "onnxruntime" and "int8" not in runtime.CONVERTS

    def _route(self) -> Route:
        if self.via_qdq:
            return Route(self.runtime, self.model, True)  # the int8 file is onnxruntime's QDQ ONNX
        way, why = route(self.runtime, self.model)
        if way is None:  # this source does not reach this runtime here: said, not a failure
            raise Unavailable(why)
        return way

    def runner(self, model: Any, shape: tuple[int, ...], calibration: list[np.ndarray], folder: Path) -> Callable:
        """A callable NCHW float32 -> float32 output of `model` (the whole model, or a unit or layer of it by name, at
        `shape`); a runtime's files are written into `folder` (made here).

        Args:
            calibration: NCHW batches of the model's (or unit's) input for int8's activation ranges.
        """
        folder.mkdir(parents=True, exist_ok=True)
        whole = model is self.model
        if self.runtime is None:

            def run_framework(x: np.ndarray) -> np.ndarray:
                with self.side.low_precision(self.model, self.precision) as low:
                    if whole:
                        return self.side.run_stages(low, x)[low.spec.output_name]
                    return self.side.run_unit(low, model, x)

            return run_framework
        way = self._route()
        target = model if whole else self.side.unit_model(self.model, model)
        if whole:  # its batch axis is open: small batches bound what the calibration holds at once
            calibration = [part for batch in calibration for part in np.array_split(batch, -(-len(batch) // 4))]
        with held(), quiet_imports():  # onnxruntime's quantiser and graph cleaner log to stderr as they go
            path = self._file(way, target, folder, shape, whole, calibration)
            # OpenVINO runs a QDQ file's quantised convolutions in int8 and the rest in what it is asked: fp32.
            asked = "fp32" if self.via_qdq else self.precision
            session = way.load(path, asked)
        if self.precision != "int8" and session.precision != self.precision:
            raise Unavailable(
                f"{self.name} computes in {session.precision} when asked for {self.precision} on this machine "
                f"({session.evidence}): nothing in {self.precision} to judge"
            )
        if not self.seen:
            self.seen = f"{session.precision} ({session.evidence})"
            if self.via_qdq:
                self.seen = f"int8 (a QDQ graph: OpenVINO runs its quantised convolutions in int8; {session.evidence})"
        return lambda x: way.run(session, x)

    def _file(self, way: Route, target: Any, folder: Path, shape: tuple, whole: bool, calibration: list) -> Path:
        layout = [way.layout(batch) for batch in calibration]
        if self.via_qdq:
            ort = runtime_named("onnxruntime")
            onnx_file = Route(ort, self.model, True).export(target, folder, shape, unit=not whole)
            quantised = ort.lower(onnx_file, folder, "int8", layout)
            layout_shape = way.layout(np.zeros(shape, np.float32)).shape
            return self.runtime.export("onnx", quantised, folder, layout_shape, whole)
        if self.precision in self.runtime.CONVERTS:
            return way.export(target, folder, shape, not whole, self.precision, layout)
        path = way.export(target, folder, shape, unit=not whole)
        if self.precision in self.runtime.LOWERS:
            return self.runtime.lower(path, folder, self.precision, layout)
        return path


def refusal(precision: str, engine: str) -> str | None:
    """Why `engine` (a framework or a runtime) cannot be judged in `precision` here, in one line, or None."""
    if engine in ("torch", "keras"):
        if precision in FRAMEWORK_PRECISIONS:
            return None
        own = {
            "torch": "torch's post-training int8 flow (PT2E, X86InductorQuantizer) has moved to torchao, which this "
            "project does not install",
            "keras": "Keras' own int8 (model.quantize) quantizes Dense and EinsumDense layers, not convolutions",
        }[engine]
        return f"{engine}: {own}; int8 is judged on a runtime's file: --runtime onnxruntime or openvino"
    if engine not in RUNTIME_PRECISIONS:
        return f"{engine}: this check builds no {precision} file for it; {precision} runs on " + ", ".join(
            name for name, held_ in RUNTIME_PRECISIONS.items() if precision in held_
        )
    if precision not in RUNTIME_PRECISIONS[engine]:
        return f"{engine} cannot be asked for {precision} here; it takes {', '.join(('fp32', *RUNTIME_PRECISIONS[engine]))}"
    return missing(engine)


def request_refusal(precision: str, runtimes: list[str], named: bool, device: str = "cpu") -> str | None:
    """Why a check cannot be asked for `precision` on `runtimes` (named one by one, or 'all' when not `named`), in one
    line, or None: int8 needs a runtime; a runtime named that cannot compute in it is refused before any work."""
    if precision == "fp32":
        return None
    if device != "cpu":
        return (
            f"--precision {precision} --device {device}: the low-precision pass runs on the CPU in this version (its "
            "multiple was measured there, and no GPU was at hand to measure it on); leave out --device"
        )
    if precision == "int8" and not runtimes:
        return (
            "--precision int8: int8 is judged on a runtime's file: add --runtime onnxruntime or openvino (torch's PT2E "
            "flow has moved to torchao, which this project does not install; Keras' model.quantize takes Dense layers, "
            "not convolutions)"
        )
    for name in runtimes if named else []:
        line = refusal(precision, name)
        if line:
            return f"--precision {precision} --runtime {name}: {line}"
    return None
