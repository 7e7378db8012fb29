"""The Keras side of every parity operation (mirrors `parity.backends.torch`, same names).

Arrays cross this boundary as numpy, NCHW, in canonical (torchvision) keys and PyTorch layouts; the
one NCHW <-> NHWC conversion of each array happens here.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Mapping

import keras
import numpy as np

from parity.weights import keras_key, keras_layout, torch_layout, torch_shape

NAME = "keras"


# -- weights ---------------------------------------------------------------------------------------


def tensors(model: Any) -> dict[str, Any]:
    """Canonical key -> the model's own variable (weights and BN moving statistics)."""
    if not model.built:
        raise ValueError("the Keras model is not built yet: call it once on an input first")
    return {keras_key(v.path, model.name): v for v in model.weights}


def get_weights(model: Any) -> dict[str, np.ndarray]:
    """Canonical weights as numpy copies in PyTorch layout (kernels transposed)."""
    return {key: torch_layout(np.array(var.numpy())) for key, var in tensors(model).items()}


def get_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    return {key: torch_shape(tuple(var.shape)) for key, var in tensors(model).items()}


def assign(model: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Assign validated canonical arrays (see `parity.weights.set_weights`)."""
    targets = tensors(model)
    for key, value in arrays.items():
        targets[key].assign(keras_layout(value).astype(targets[key].dtype))


def count_params(model: Any) -> tuple[int, int]:
    """(trainable parameters, BN moving-statistic elements) of a model or any of its layers."""
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    running = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
    return trainable, running


def framework_counts(model: Any) -> dict[str, int]:
    """Keras' own totals, as `model.summary()` prints them."""
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    return {"keras_trainable": trainable, "keras_non_trainable": model.count_params() - trainable,
            "keras_total": model.count_params()}


# -- running ---------------------------------------------------------------------------------------


def _nhwc(model: Any, x: np.ndarray) -> np.ndarray:
    # FRAMEWORK: layout — the one NCHW -> NHWC conversion, at the Keras model's input.
    x = np.asarray(x)
    if x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x).astype(model.compute_dtype)


def _nchw(value: Any) -> np.ndarray:
    value = np.asarray(keras.ops.convert_to_numpy(value))
    return value.transpose(0, 3, 1, 2) if value.ndim == 4 else value


def _keras_device(device: str) -> str:
    return "gpu:0" if device == "cuda" else "cpu:0"


def run_stages(model: Any, x: np.ndarray, device: str = "cpu") -> dict[str, np.ndarray]:
    """Inference-mode stage outputs (stem, layer1.., logits) as NCHW numpy arrays."""
    with keras.device(_keras_device(device)):
        outputs = model.forward_stages(_nhwc(model, x), training=False)
        return {k: _nchw(v) for k, v in outputs.items()}


def sublayer(model: Any, name: str) -> Any:
    """The layer of a canonical dotted name: 'layer3.4' -> the block `4` inside the stage `layer3`."""
    layer = model
    for part in name.split("."):
        children = {child.name: child for child in layer._flatten_layers(include_self=False, recursive=False)}
        if part not in children:
            raise KeyError(f"{model.name} has no layer {name!r} (no {part!r} under {layer.name!r})")
        layer = children[part]
    return layer


def _unit_layers(model: Any, name: str) -> list[Any]:
    """The Keras layers that make up one canonical unit, in call order."""
    if name == "stem":
        return [model.forward_stem]
    if name == "head":
        return [model.forward_head]
    parent_name, _, local = name.rpartition(".")
    parent = sublayer(model, parent_name) if parent_name else model
    # FRAMEWORK: padding — a torch conv or pool pads itself; here a ZeroPadding2D layer in front of
    # it (`pad{i}` before `conv{i}`, `maxpool_pad` before `maxpool`) belongs to the same unit.
    pad = getattr(parent, "pad" + local[len("conv"):], None) if local.startswith("conv") else None
    if local == "maxpool":
        pad = parent.maxpool_pad
    if local == "avgpool":
        return [parent.avgpool]
    layer = sublayer(parent, local) if parent_name else getattr(model, local)
    return ([pad] if pad is not None else []) + [layer]


def run_unit(model: Any, name: str, x: np.ndarray, device: str = "cpu") -> np.ndarray:
    """One piece of the network alone, in inference mode, on a given NCHW input.

    Args:
        model: a resnet_keras model.
        name: "stem", "head", a block ("layer3.4") or a layer by canonical name ("layer3.4.bn2",
            "layer3.4.downsample.0", "conv1", "maxpool", "avgpool", "fc").
        x: the unit's input (NCHW, or (N, features) for "fc").
        device: "cpu" or "cuda".
    """
    out = _nhwc(model, x)
    with keras.device(_keras_device(device)):
        for layer in _unit_layers(model, name):
            if getattr(layer, "_call_has_training_arg", True):
                out = layer(out, training=False)
            else:
                out = layer(out)
        return _nchw(out)


class _Float64Compute(keras.dtype_policies.DTypePolicy):
    """Variables stay as stored (float32), every op computes in float64: the fp32 weights, exactly."""

    def _parse_name(self, name: str) -> tuple[str, str]:
        return "float64", "float32"


@contextlib.contextmanager
def float64(model: Any) -> Iterator[Any]:
    """The same model computing in float64 for the block (its weights cast exactly); restored after.

    Every layer gets a dtype policy that computes in float64 over its float32 variables (Keras
    casts them on use), so any change a user made to a layer is kept. Under JAX, x64 is switched on
    for the block (JAX silently computes in float32 otherwise).
    """
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    policies = [layer.dtype_policy for layer in layers]
    policy = _Float64Compute("float64_compute")
    with _jax_x64():
        try:
            for layer in layers:
                layer.dtype_policy = policy
            yield model
        finally:
            for layer, old in zip(layers, policies):
                layer.dtype_policy = old


@contextlib.contextmanager
def _jax_x64() -> Iterator[None]:
    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", old)


def calibrate(model: Any, batches: list[np.ndarray]) -> None:
    """Set every BN's moving statistics to their average over `batches` (training-mode passes).

    # FRAMEWORK: BN momentum — Keras has no cumulative mode (torch's momentum=None); momentum
    # i / (i + 1) at the i-th batch gives the same running average.
    Trainable weights are not changed.
    """
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [norm.momentum for norm in norms]
    try:
        for index, x in enumerate(batches):
            for norm in norms:
                norm.momentum = index / (index + 1)
            model(_nhwc(model, x), training=True)
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum


def device_name(device: str) -> str:
    """The device as a person reads it."""
    return f"{device} (Keras on {keras.backend.backend()})"


# -- export ----------------------------------------------------------------------------------------


def export_onnx(model: Any, tmp: Path, nchw: bool, opset: int, height: int, width: int,
                input_name: str, output_name: str, batch_axis: str) -> None:
    """Keras' own `model.export(format="onnx")` to `tmp`; batch, height and width stay dynamic.

    On the TensorFlow backend, tf2onnx runs with the weight copies it otherwise holds switched off
    (`_lean_tf2onnx`: resnet50 9.7 -> 1.7 GB peak).
    """
    from parity.export import refuse_keras_onnx

    refuse_keras_onnx(keras.backend.backend())
    spec = model.spec
    target = NCHWInput(model) if nchw else model
    shape = (None, spec.in_channels, None, None) if nchw else (None, None, None, spec.in_channels)
    signature = [keras.InputSpec(shape=shape, dtype="float32", name=input_name)]
    tf2onnx = keras.backend.backend() == "tensorflow"  # the torch Keras backend exports with torch.onnx
    with _lean_tf2onnx() if tf2onnx else contextlib.nullcontext():
        target.export(str(tmp), format="onnx", input_signature=signature, opset_version=opset, verbose=False)
    if tf2onnx:
        _inline_zip(tmp)


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
        np.product = np.prod
    try:
        yield
    finally:
        graph.Node.update_proto, convert.from_function = update_proto, from_function
        if shim:
            del np.product


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


def build(spec: Any) -> Any:
    """A resnet_keras model of `spec`, built (variables exist)."""
    import resnet_keras

    return resnet_keras.ResNet(spec)


# -- training --------------------------------------------------------------------------------------

from resnet_keras.train import make_optimizer, predict_logits, train_step  # noqa: E402  (re-exported)

SLOTS = ("momentums", "exp_avgs", "exp_avg_sqs")
"""Per-variable optimizer slots: Keras SGD's velocities; our torch-rule Adam's moments."""


def optimizer_state(model: Any, optimizer: Any) -> dict[str, np.ndarray]:
    """The optimizer's state as '{slot}.{canonical key}' -> numpy in PyTorch layout, plus 'iterations'.

    Keras' own conventions are kept (SGD velocity v = -lr * torch's momentum buffer), so a resumed
    run continues bit for bit.
    """
    keys = [keras_key(v.path, model.name) for v in model.trainable_variables]
    out = {"iterations": np.array(optimizer.iterations.numpy())}
    for slot in SLOTS:
        for key, var in zip(keys, getattr(optimizer, slot, None) or []):
            out[f"{slot}.{key}"] = torch_layout(np.array(var.numpy()))
    return out


def load_optimizer_state(model: Any, optimizer: Any, state: Mapping[str, np.ndarray]) -> None:
    """Put back what `optimizer_state` returned (every key checked first; nothing changes on error)."""
    keys = [keras_key(v.path, model.name) for v in model.trainable_variables]
    targets = {"iterations": optimizer.iterations}
    for slot in SLOTS:
        targets.update({f"{slot}.{key}": var for key, var in zip(keys, getattr(optimizer, slot, None) or [])})
    unknown = sorted(set(state) - set(targets))
    if unknown:
        raise KeyError(f"optimizer state this optimizer does not hold: {', '.join(unknown[:5])}")
    for key, value in state.items():
        target = targets[key]
        # reshape: a file may hold the 0-d iteration count as shape (1,)
        value = np.reshape(keras_layout(np.array(value)) if key != "iterations" else value, target.shape)
        target.assign(value.astype(target.dtype))
