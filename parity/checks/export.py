"""ONNX export of both backends (whole models and single units) and running the files with onnxruntime.

Torch models go through `torch.onnx.export` (the dynamo exporter); Keras models through Keras' own
`model.export(..., format="onnx")` (tf2onnx under the TensorFlow backend, in its large-model mode:
`parity.backends.keras._lean_tf2onnx`). Every file is written to a temporary name, checked with
`onnx.checker`, and only then renamed to the target.

Both exports take the input named `input` and give the output named `logits`, with the batch axis
(named `batch`), height and width dynamic (torch graphs of 'same'-padding specs: batch only); with
`nchw=True` the Keras export takes NCHW like the torch one, so the two files are drop-in
interchangeable.
"""

from __future__ import annotations

import collections
import glob
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter, spec_of
from parity.checks.compare import check_device
from parity.core.files import atomic_write
from parity.core.layout import nchw, nhwc

DEFAULT_OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_AXIS = "batch"
LAYOUT_KEY = "resnet_parity.layout"


def export_onnx(
    model: Any,
    path: str | os.PathLike[str],
    nchw: bool | None = None,
    opset: int = DEFAULT_OPSET,
    height: int = 224,
    width: int | None = None,
    force: bool = False,
    precision: str = "fp32",
    calibration: np.ndarray | None = None,
) -> Path:
    """Export a model of either backend to ONNX, atomically, and check the file.

    Args:
        model: a resnet_torch or resnet_keras model.
        path: target `.onnx` file; an existing file is replaced only with `force`.
        nchw: input layout of the graph. Torch graphs are always NCHW; Keras graphs are NHWC unless
            `nchw=True` (default: NCHW for torch, NHWC for Keras).
        opset: ONNX opset.
        height, width: example input size used while tracing (batch, height and width stay dynamic,
            but for torch graphs of 'same'-padding specs, which keep this size).
        force: overwrite an existing file.
        precision: 'fp32'; 'fp16' (the graph converted, inputs and outputs kept float32) or 'int8' (static QDQ, weights
            per channel): onnxruntime's own tools (`parity.backends.runtimes.ort.OnnxRuntime.lower`).
        calibration: NCHW images int8's activation ranges are calibrated on.
    """
    side = adapter(model)
    width = height if width is None else width
    if side.NAME == "torch" and nchw is False:
        raise ValueError("a torch model exports NCHW only; nchw=False applies to Keras models")
    if not isinstance(opset, int) or opset < 13:
        raise ValueError(f"opset must be an int >= 13, got {opset!r}")
    if precision == "int8" and calibration is None:
        raise ValueError("an int8 export needs calibration images (NCHW)")

    def write(tmp: Path) -> None:
        _write_checked(side, model, tmp, bool(nchw), opset, height, width)
        if precision != "fp32":
            nhwc_graph = side.NAME != "torch" and not nchw
            images = [] if calibration is None else [nhwc(calibration) if nhwc_graph else calibration]
            _lower(tmp, precision, images)

    return atomic_write(path, write, force=force)


def _lower(path: Path, precision: str, calibration: list[np.ndarray]) -> None:
    """Replace the fp32 file at `path` by onnxruntime's file of `precision` made from it."""
    import shutil
    import tempfile

    from parity.backends.runtimes import runtime_named
    from parity.core.logs import quiet_imports

    with tempfile.TemporaryDirectory(prefix="resnet-parity-lower-") as folder, quiet_imports():
        shutil.copyfile(runtime_named("onnxruntime").lower(path, Path(folder), precision, calibration), path)


def _write_checked(side, model, tmp: Path, nchw: bool, opset: int, height: int, width: int) -> None:
    import onnx

    try:
        output_name = spec_of(model).output_name
        channels = spec_of(model).in_channels
        shape = (2, channels, height, width) if nchw or side.NAME == "torch" else (2, height, width, channels)
        side.export_onnx(model, tmp, nchw, opset, shape, True, INPUT_NAME, output_name, BATCH_AXIS)
        graph = onnx.load(str(tmp))  # reads any external-data side file into memory
        _name_io(graph, output_name)
        fold_pool_padding(graph)
        layout = "NCHW" if nchw or side.NAME == "torch" else "NHWC"
        onnx.helper.set_model_props(
            graph, {LAYOUT_KEY: layout, "resnet_parity.spec": json.dumps(spec_of(model).to_dict())}
        )
        onnx.checker.check_model(graph, full_check=True)
        onnx.save(graph, str(tmp))  # one self-contained file (weights inline, < 2 GB)
    finally:
        # The torch exporter writes its weights to `<file>.data` beside the file; nothing but the
        # atomic write's own temporary may remain, on success, failure or Ctrl-C.
        for leftover in tmp.parent.glob(glob.escape(tmp.name) + ".*"):
            leftover.unlink(missing_ok=True)


def fold_pool_padding(model: Any) -> int:
    """Fold each zero `Pad` between a `Relu` and a `MaxPool` into the MaxPool's own pads; returns the count.

    # FRAMEWORK: max-pool padding — Keras' MaxPooling2D has no explicit padding, so our Keras model pads
    # with ZeroPadding2D first and tf2onnx exports a separate Pad (a full copy of the 112x112 map of
    # resnet50: 1.5-3 % of onnxruntime's time, measured). ONNX's MaxPool pads with -inf; after a ReLU every
    # value is >= 0, so zero padding and -inf padding give the same maximum (the `maxpool_padding` lesson).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    uses = collections.Counter(name for node in graph.node for name in node.input)
    uses.update(out.name for out in graph.output)
    constants = {init.name: init for init in graph.initializer}
    folded = 0
    for pool in [n for n in graph.node if n.op_type == "MaxPool"]:
        pad = producers.get(pool.input[0])
        if pad is None or pad.op_type != "Pad" or uses[pad.output[0]] != 1:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in pad.attribute}
        pool_attrs = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
        source = producers.get(pad.input[0])
        zero = (
            len(pad.input) < 3
            or not pad.input[2]
            or (pad.input[2] in constants and not numpy_helper.to_array(constants[pad.input[2]]).any())
        )
        if (
            attrs.get("mode", b"constant") != b"constant"
            or not zero
            or len(pad.input) > 3
            or pad.input[1] not in constants
            or source is None
            or source.op_type != "Relu"
            or pool_attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"")
        ):
            continue
        pads = numpy_helper.to_array(constants[pad.input[1]]).tolist()
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):  # only H and W of an NCHW map
            continue
        old = pool_attrs.get("pads", [0, 0, 0, 0])
        new = [old[0] + pads[2], old[1] + pads[3], old[2] + pads[6], old[3] + pads[7]]
        pool.input[0] = pad.input[0]
        kept = [a for a in pool.attribute if a.name != "pads"]
        del pool.attribute[:]
        pool.attribute.extend(kept + [helper.make_attribute("pads", new)])
        graph.node.remove(pad)
        for name in pad.input[1:]:
            if name in constants and uses[name] == 1:
                graph.initializer.remove(constants[name])
        folded += 1
    return folded


def _name_io(graph: Any, output_name: str = OUTPUT_NAME) -> None:
    """Name the single input `input` and output `logits` (`features` without an fc), and axis 0 of both `batch`."""
    (inp,), (out,) = graph.graph.input, graph.graph.output
    renames = {inp.name: INPUT_NAME, out.name: output_name}
    for node in graph.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    inp.name, out.name = INPUT_NAME, output_name
    for value in (inp, out):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_AXIS


# -- running ---------------------------------------------------------------------------------------


def onnx_session(path: str | os.PathLike[str], device: str = "cpu", allow_tf32: bool = False) -> Any:
    """An onnxruntime session (`parity.backends.runtimes.ort`); refuses a file that is missing or not ONNX."""
    from parity.backends.runtimes.ort import session

    check_device(device)
    return session(path, device, allow_tf32)


def export_unit_onnx(unit: Any, side: Any, path: Path, shape: tuple[int, ...], opset: int = DEFAULT_OPSET) -> Path:
    """One unit of a model alone (`Adapter.unit_model`) to ONNX at a fixed `shape` (the source's layout), atomically."""

    def write(tmp: Path) -> None:
        import onnx

        try:
            side.export_onnx(unit, tmp, False, opset, shape, False, INPUT_NAME, "output", BATCH_AXIS)
            graph = onnx.load(str(tmp))
            onnx.checker.check_model(graph)
            onnx.save(graph, str(tmp))
        finally:
            for leftover in tmp.parent.glob(glob.escape(tmp.name) + ".*"):
                leftover.unlink(missing_ok=True)

    return atomic_write(path, write, force=True)


def input_layout(session: Any) -> str:
    """'NCHW' or 'NHWC', as recorded in the file's metadata by `export_onnx` (NCHW if absent)."""
    return session.metadata.get(LAYOUT_KEY, "NCHW")


def run_onnx(session: Any, x: np.ndarray) -> np.ndarray:
    """The output (logits, features, or an NCHW feature map) of an onnxruntime session for an NCHW batch
    (converted to and from NHWC where the graph is NHWC)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if input_layout(session) == "NHWC":
        x = nhwc(x)
    out = session.run(x)
    return nchw(out) if input_layout(session) == "NHWC" and out.ndim == 4 else out


def op_histogram(path: str | os.PathLike[str]) -> collections.Counter:
    """Node count per op type of an ONNX file (top-level graph)."""
    import onnx

    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)
