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
    precision, evidence = graph_precision(path)
    if cuda:
        evidence = f"CUDA provider use_tf32={int(allow_tf32)}, {evidence}"
        precision = "tf32" if allow_tf32 and precision == "fp32" else precision
    return Session(run, precision, evidence, dict(inner.get_modelmeta().custom_metadata_map))


QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger")


def graph_precision(path: Path) -> tuple[str, str]:
    """(the precision an ONNX file computes in, read off its graph, and where that was read)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    ops = {node.op_type for node in graph.node}
    if ops & set(QUANT_OPS):
        count = sum(node.op_type == "QuantizeLinear" for node in graph.node)
        return "int8", f"an int8 QDQ graph ({count} QuantizeLinear nodes)"
    types = {init.data_type for init in graph.initializer}
    if onnx.TensorProto.FLOAT16 in types and onnx.TensorProto.FLOAT not in types:
        return "fp16", "an fp16 graph (its initializers are float16)"
    return "fp32", "CPU provider, an fp32 graph"


CALIBRATION_STEP = 4
"""Calibration batches whose intermediate outputs onnxruntime holds before it folds them into its ranges."""


class _Calibration:
    """onnxruntime's `CalibrationDataReader` over a list of batches (its base class is a plain ABC)."""

    def __init__(self, name: str, batches: list[np.ndarray]):
        self.feeds = iter([{name: float32(batch)} for batch in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


class OnnxRuntime(Runtime):
    """onnxruntime's CPU (or CUDA) provider on an ONNX file; fp16 as an fp16 graph, int8 as a static QDQ file."""

    NAME = "onnxruntime"
    LABEL = "onnxruntime"
    DIST = "onnxruntime"
    ROUTES = {"onnx": "onnxruntime"}
    PRECISIONS = ("fp32", "fp16", "int8")
    LOWERS = ("fp16", "int8")
    PER_CHANNEL = True
    """int8 weights quantised per output channel (False: one scale per tensor, the lessons' naive choice)."""
    FLOAT_ENDS = False
    """Keep the first convolution and the last matrix product in fp32 (the lessons' other choice); by default every
    layer is int8, as torchvision's quantized ResNets are."""

    def lower(self, path: Path, folder: Path, precision: str, calibration: list[np.ndarray]) -> Path:
        """fp16: `onnxruntime.transformers.float16` converts the graph, inputs and outputs kept float32. int8:
        `onnxruntime.quantization.quantize_static`, QDQ format, weights int8 per channel, activations uint8 with
        ranges calibrated (MinMax) on `calibration`, after onnxruntime's own pre-processing (shape inference and
        graph optimisation, folding BatchNorm into the convolutions)."""
        self.check_precision(precision)
        target = folder / f"model.{precision}.onnx"
        if precision == "fp16":
            import onnx
            from onnxruntime.transformers.float16 import convert_float_to_float16

            onnx.save(convert_float_to_float16(onnx.load(str(path)), keep_io_types=True), str(target))
        elif precision == "int8":
            from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
            from onnxruntime.quantization.shape_inference import quant_pre_process

            prepared = folder / "model.pre.onnx"
            quant_pre_process(str(path), str(prepared))
            name = ort.InferenceSession(str(prepared), providers=["CPUExecutionProvider"]).get_inputs()[0].name
            ends: list[str] = []
            if self.FLOAT_ENDS:
                import onnx

                nodes = onnx.load(str(prepared)).graph.node
                ends = [next(n.name for n in nodes if n.op_type == "Conv")]
                ends += [next(n.name for n in reversed(nodes) if n.op_type in ("Gemm", "MatMul"))]
            quantize_static(
                str(prepared),
                str(target),
                _Calibration(name, calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=self.PER_CHANNEL,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=ends,
                # Ranges folded in every CALIBRATION_STEP batches: onnxruntime otherwise keeps every intermediate
                # output of every batch until the end (measured: 6.7 GB for resnet50 on 24 images at 224).
                extra_options={"CalibMaxIntermediateOutputs": CALIBRATION_STEP},
            )
        else:
            return path
        return target

    def export(self, source: str, model: Any, folder: Path, shape: tuple[int, ...], dynamic: bool) -> Path:
        """The ONNX file is what onnxruntime runs: nothing more to write."""
        return Path(model)

    def load(self, path: Path, precision: str | None = "fp32") -> Session:
        """The file as it is: its precision is its graph's (`lower` writes the fp16 and int8 files)."""
        self.check_precision(precision)
        found = session(path)
        if precision is not None and found.precision != precision:
            raise ValueError(f"{path.name} is an {found.precision} graph, not {precision}: make it with lower()")
        return found
