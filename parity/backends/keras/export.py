"""Export of resnet_keras models with Keras' own `model.export` (mirrors `parity.backends.torch.export`): ONNX,
the deployment formats Keras writes (OpenVINO, LiteRT, TF SavedModel), and one unit alone."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from parity.backends.interface import Adapter
from parity.backends.keras.run import call_layers, unit_layers
from parity.core.errors import Unavailable
from parity.spec import ResNetSpec

TENSORFLOW_FORMATS = ("litert", "tf_saved_model")
"""Keras formats written through TensorFlow (jax2tf from JAX): refused on Keras' torch backend."""


class Unit(keras.Model):
    """One unit of a resnet_keras model alone (its stem, a block or its head), sharing the model's layers.

    Args:
        model: the resnet_keras model.
        name: 'stem', 'head' or a block ('layer2.0').
    """

    def __init__(self, model: Any, name: str, **kwargs):
        super().__init__(name=f"{model.name}_{name.replace('.', '_')}", **kwargs)
        self.unit_spec = model.spec  # the spec, not the model: Keras would track (and export) all of its weights
        self.layers_of_unit = unit_layers(model, name)
        self.built = True  # its layers are: the model's own

    def call(self, x):
        return call_layers(self.layers_of_unit, x)


def _converter_options(fmt: str, precision: str, calibration: Sequence[np.ndarray]) -> dict[str, Any]:
    """TensorFlow Lite converter settings for a LiteRT file in `precision` (none in fp32)."""
    if precision == "fp32":
        return {}
    if fmt != "litert" or precision not in ("fp16", "int8"):
        raise ValueError(f"Keras writes {fmt} in fp32 here; fp16 and int8 only as litert, not {precision}")
    import tensorflow as tf

    options: dict[str, Any] = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if precision == "fp16":
        options["target_spec"] = {"supported_types": [tf.float16]}
        return options
    batches = [np.ascontiguousarray(batch, dtype=np.float32) for batch in calibration]
    if not batches:
        raise ValueError("an int8 LiteRT file needs calibration images")
    options["representative_dataset"] = lambda: ([batch] for batch in batches)
    return options


class KerasExport(Adapter):
    """`model.export(format="onnx")`: tf2onnx under TensorFlow (lean), torch.onnx under Keras' torch backend; the
    formats of `EXPORT_FORMATS`; units alone."""

    LAYOUT = "NHWC"
    EXPORT_FORMATS = ("openvino", "litert", "tf_saved_model")

    def unit_model(self, model: Any, unit: str) -> Any:
        """`Unit`: one unit of `model` alone (inference mode on every call)."""
        return Unit(model, unit)

    def export_format(
        self,
        model: Any,
        fmt: str,
        path: Path,
        shape: tuple[int, ...] | None,
        dynamic: bool,
        precision: str = "fp32",
        calibration: Sequence[np.ndarray] = (),
    ) -> None:
        """`model.export(path, format=fmt)` with an NHWC float32 signature (batch, height and width open with
        `dynamic`); `fmt` one of `EXPORT_FORMATS`. `shape=None`: no signature, Keras' own default (what a user writes
        after calling the model once). LiteRT also in fp16 (float16 weights) or int8 (the converter's full-integer
        quantisation, its ranges from `calibration` as the representative dataset), through the converter options
        Keras passes on to TensorFlow Lite's."""
        if fmt not in self.EXPORT_FORMATS:
            raise ValueError(f"Keras export format must be one of {self.EXPORT_FORMATS}, got {fmt!r}")
        if fmt in TENSORFLOW_FORMATS and keras.backend.backend() == "torch":
            raise Unavailable(
                f"Keras writes {fmt} through TensorFlow; this process runs Keras on torch "
                "(use --keras-backend tensorflow, or KERAS_BACKEND=tensorflow)"
            )
        signature = None
        if shape is not None:
            signature = [
                keras.InputSpec(shape=(None, None, None, shape[-1]) if dynamic else tuple(shape), dtype="float32")
            ]
        options = _converter_options(fmt, precision, calibration)
        with contextlib.redirect_stdout(io.StringIO()):  # litert and SavedModel print their progress
            model.export(str(path), format=fmt, input_signature=signature, verbose=False, **options)

    def export_onnx(
        self,
        model: Any,
        tmp: Path,
        nchw: bool,
        opset: int,
        shape: tuple[int, ...],
        dynamic: bool,
        input_name: str,
        output_name: str,
        batch_axis: str,
    ) -> None:
        """Keras' own `model.export(format="onnx")` to `tmp`; with `dynamic`, batch, height and width stay open.

        On the TensorFlow backend, tf2onnx runs with the weight copies it otherwise holds switched off
        (`_lean_tf2onnx`: resnet50 9.7 -> 1.7 GB peak).
        """
        spec = model.unit_spec if isinstance(model, Unit) else model.spec
        refusal = self.onnx_refusal(spec)
        if refusal:
            raise RuntimeError(refusal)
        target = NCHWInput(model) if nchw else model
        signature_shape: tuple[int | None, ...] = tuple(shape)
        if dynamic:
            signature_shape = (None, shape[1], None, None) if nchw else (None, None, None, shape[-1])
        signature = [keras.InputSpec(shape=signature_shape, dtype="float32", name=input_name)]
        tf2onnx = keras.backend.backend() == "tensorflow"  # the torch Keras backend exports with torch.onnx
        with _lean_tf2onnx() if tf2onnx else contextlib.nullcontext():
            target.export(str(tmp), format="onnx", input_signature=signature, opset_version=opset, verbose=False)
        if tf2onnx:
            _inline_zip(tmp)

    def onnx_refusal(self, spec: ResNetSpec | None = None) -> str | None:
        """Why this process cannot export a Keras model (of `spec`) to ONNX (None when it can)."""
        # Keras exports ONNX from JAX through jax2tf and tf2onnx; refused in one line, not a traceback.
        if keras.backend.backend() == "jax":
            return (
                "ONNX export of the Keras model needs the tensorflow or torch Keras backend; this "
                "process runs jax (use --keras-backend tensorflow, or KERAS_BACKEND=tensorflow)"
            )
        # FRAMEWORK: grouped conv — Keras' TensorFlow backend runs a grouped Conv2D as an XLA-compiled
        # function (TF's CPU kernel has no groups), which tf2onnx 1.17 leaves as a StatefulPartitionedCall.
        if spec is not None and spec.groups > 1 and keras.backend.backend() == "tensorflow":
            return (
                f"ONNX export of a Keras model with grouped convs (groups={spec.groups}) needs the torch Keras "
                "backend: on tensorflow Keras runs them through XLA, which tf2onnx cannot convert "
                "(use --keras-backend torch, or KERAS_BACKEND=torch)"
            )
        return None


@contextlib.contextmanager
def _lean_tf2onnx() -> Iterator[None]:
    """Keras' export through tf2onnx 1.17 without the copies of every weight it otherwise holds.

    1. `large_model=True` (tf2onnx's own option, which Keras does not pass): the graph is frozen
       without building a second function and without TensorFlow's grappler pass; tf2onnx's own
       optimizers still fold the BatchNorms into the convolutions (same ops, same outputs, same
       onnxruntime speed: tested and benchmarked). The file comes out as tf2onnx's zip (graph plus one
       file per large tensor); `_inline_zip` makes it one .onnx.
    2. After each of its 36 optimizer passes (12 optimizers x 3 rounds for a ResNet) `Node.update_proto`
       clears a node's attributes and appends fresh ones to the same NodeProto; protobuf's upb arena
       frees nothing before the message goes, so every Const node keeps one more copy of its tensor per
       pass (+0.1 GB per pass for resnet50). Here each pass writes into a new NodeProto, and the old one
       (with its arena) is freed; the graph written is the same (tested).

    Peak of a resnet50 export, measured in one process: 9.7 GB as Keras calls tf2onnx, 5.3 GB with (1)
    only, 7.1 GB with (2) only, 1.7 GB with both.
    """
    import functools

    from onnx import NodeProto
    from tf2onnx import convert, graph

    update_proto, from_function = graph.Node.update_proto, convert.from_function
    shim = not hasattr(np, "product")  # tf2onnx's large-model path calls np.product, gone in NumPy 2

    def update_fresh_proto(node, *args, **kwargs):
        fresh = NodeProto()
        for field, value in node.op.ListFields():
            if field.name == "attribute":
                continue
            # protobuf 6+ has `is_repeated` (and no `label`); older ones only `label`, 3 = LABEL_REPEATED
            if getattr(field, "is_repeated", False) or getattr(field, "label", None) == 3:
                getattr(fresh, field.name).extend(value)
            elif field.message_type is not None:
                getattr(fresh, field.name).CopyFrom(value)
            else:
                setattr(fresh, field.name, value)
        node._op = fresh
        return update_proto(node, *args, **kwargs)

    graph.Node.update_proto = update_fresh_proto
    convert.from_function = functools.partial(from_function, large_model=True)
    if shim:
        setattr(np, "product", np.prod)  # noqa: B010 - numpy 2 has no such attribute for the checker to know
    try:
        yield
    finally:
        graph.Node.update_proto, convert.from_function = update_proto, from_function
        if shim:
            delattr(np, "product")  # noqa: B043


def _inline_zip(path: Path) -> None:
    """Turn tf2onnx's large-model zip at `path` into one .onnx file with its weights inline."""
    import tempfile
    import zipfile

    import onnx

    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(path) as archive:
            archive.extractall(folder)
        graph = onnx.load(str(Path(folder) / "__MODEL_PROTO.onnx"))  # reads each tensor file it names
    onnx.save(graph, str(path))


class NCHWInput(keras.Model):
    """A resnet_keras model taking NCHW input (for a drop-in twin of the torch ONNX file).

    Args:
        inner: the resnet_keras model.
    """

    def __init__(self, inner: Any, **kwargs):
        super().__init__(name=f"{inner.name}_nchw", **kwargs)
        self.inner = inner
        self.build((None, inner.spec.in_channels, None, None))

    def build(self, input_shape) -> None:
        self.built = True

    def call(self, x):
        # FRAMEWORK: layout — NCHW -> NHWC at the graph's edge; tf2onnx folds it into the convs.
        return self.inner(keras.ops.transpose(x, (0, 2, 3, 1)), training=False)
