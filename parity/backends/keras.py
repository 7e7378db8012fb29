"""The Keras side of every parity operation (mirrors `parity.backends.torch`, same names).

Arrays cross this boundary as numpy, NCHW, in canonical (torchvision) keys and PyTorch layouts; each
array is converted here, with `parity.core.layout`. The functions are the ones
`parity.backends.protocol.Adapter` lists; nothing else in `parity` imports keras, tensorflow or jax.
"""

from __future__ import annotations

import contextlib
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

import resnet_keras
import resnet_keras.distributed
import resnet_keras.model
import resnet_keras.train as keras_train
from parity.core import threads as _threads
from parity.core.errors import CheckpointError, Unavailable
from parity.core.layout import keras_key, keras_layout, nchw, nhwc, torch_layout, torch_shape
from parity.spec import ResNetSpec

NAME = "keras"


# -- building and placing ------------------------------------------------------------------------------


def build(spec: ResNetSpec, dtype: str = "float32") -> Any:
    """A resnet_keras model of `spec`, built (variables exist), its layers computing in `dtype`."""
    with _floatx(dtype):
        return resnet_keras.ResNet(spec)


@contextlib.contextmanager
def _floatx(dtype: str) -> Iterator[None]:
    """Build Keras layers and optimizers in `dtype` (everything created inside takes it as default).

    Both settings are needed: layers take the global dtype policy (fixed once first read, whatever
    floatx says later), optimizers and losses take floatx.
    """
    old_floatx, old_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(old_floatx)
        keras.config.set_dtype_policy(old_policy)


@contextlib.contextmanager
def dtype_scope(dtype: str) -> Iterator[None]:
    """Models and optimizers made inside compute in `dtype`; under JAX, float64 needs x64 switched on."""
    with _floatx(dtype), _jax_x64() if dtype == "float64" else contextlib.nullcontext():
        yield


def dtype_of(model: Any) -> str:
    """The dtype the model computes in ('float32', 'float64')."""
    return keras.backend.standardize_dtype(model.compute_dtype)


def to_device(model: Any, device: str) -> Any:
    """The model as it is: Keras places variables itself (`keras.device` scopes the runs)."""
    return model


def data_parallel() -> Any:
    """The engine of data-parallel training: `resnet_keras.distributed` (keras.distribution, JAX)."""
    return resnet_keras.distributed


def backend_name() -> str:
    """The Keras backend this process runs ('tensorflow', 'torch' or 'jax')."""
    return keras.backend.backend()


def device_count() -> int:
    """Devices Keras can distribute over in this process (JAX backend; 1 elsewhere)."""
    if keras.backend.backend() != "jax":
        return 1
    return len(keras.distribution.list_devices())


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
    """Assign validated canonical arrays (see `parity.io.weights.set_weights`)."""
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
    return {
        "keras_trainable": trainable,
        "keras_non_trainable": model.count_params() - trainable,
        "keras_total": model.count_params(),
    }


# -- running ---------------------------------------------------------------------------------------


def _nhwc(model: Any, x: np.ndarray) -> np.ndarray:
    # FRAMEWORK: layout — NCHW -> NHWC at the Keras model's input, in the model's compute dtype.
    return nhwc(x, model.compute_dtype)


def _nchw(value: Any) -> np.ndarray:
    return nchw(np.asarray(keras.ops.convert_to_numpy(value)))


def _keras_device(device: str) -> str:
    return "gpu:0" if device == "cuda" else "cpu:0"


def run_stages(model: Any, x: np.ndarray, device: str = "cpu", training: bool = False) -> dict[str, np.ndarray]:
    """Stage outputs (stem, layer1.., logits) as NCHW numpy arrays, in inference mode unless `training`
    (BatchNorm on batch statistics; the moving statistics are updated, as a training step would)."""
    # FRAMEWORK: train / eval — Keras takes training= on every call; torch keeps a mode on the module.
    with keras.device(_keras_device(device)):
        outputs = model.forward_stages(_nhwc(model, x), training=training)
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
    pad = getattr(parent, "pad" + local[len("conv") :], None) if local.startswith("conv") else None
    if isinstance(parent, keras.Sequential):  # the deep stem: `0_pad` before the conv `0`
        pad = next((child for child in parent.layers if child.name == f"{local}_pad"), None)
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


def cuda_available() -> bool:
    """True when the Keras backend sees a GPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    import torch

    return torch.cuda.is_available()


@contextlib.contextmanager
def tf32(allow: bool) -> Iterator[None]:
    """TF32 on (allow) or off for the block in TensorFlow and JAX where loaded (torch: its adapter)."""
    restore = []
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        old_tf = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(allow)
        restore.append(lambda: tf.config.experimental.enable_tensor_float_32_execution(old_tf))
    jax = sys.modules.get("jax")
    if jax is not None:
        old_jax = jax.config.jax_default_matmul_precision
        jax.config.update("jax_default_matmul_precision", None if allow else "highest")
        restore.append(lambda: jax.config.update("jax_default_matmul_precision", old_jax))
    try:
        yield
    finally:
        for undo in reversed(restore):
            undo()


def threads() -> int:
    """Threads the Keras backend computes with (TensorFlow's intra-op pool; 0 means all cores)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.config.threading.get_intra_op_parallelism_threads()
    return 0


def set_threads(count: int) -> None:
    """Compute with `count` threads where the backend lets a running process choose (TensorFlow, before
    its first op); JAX reads XLA_FLAGS at start, Keras on torch follows torch's setting."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(count)
            tf.config.threading.set_inter_op_parallelism_threads(count)
        except RuntimeError:  # TensorFlow already started its pools
            pass


def seed(value: int) -> None:
    """Seed Keras' generators (a fresh model's initialisers draw from them)."""
    keras.utils.set_random_seed(value)


def device_name(device: str) -> str:
    """The device as a person reads it."""
    return f"{device} (Keras on {keras.backend.backend()})"


# -- export ----------------------------------------------------------------------------------------


def export_onnx(
    model: Any,
    tmp: Path,
    nchw: bool,
    opset: int,
    height: int,
    width: int,
    input_name: str,
    output_name: str,
    batch_axis: str,
) -> None:
    """Keras' own `model.export(format="onnx")` to `tmp`; batch, height and width stay dynamic.

    On the TensorFlow backend, tf2onnx runs with the weight copies it otherwise holds switched off
    (`_lean_tf2onnx`: resnet50 9.7 -> 1.7 GB peak).
    """
    refusal = onnx_refusal(model.spec)
    if refusal:
        raise RuntimeError(refusal)
    spec = model.spec
    target = NCHWInput(model) if nchw else model
    shape = (None, spec.in_channels, None, None) if nchw else (None, None, None, spec.in_channels)
    signature = [keras.InputSpec(shape=shape, dtype="float32", name=input_name)]
    tf2onnx = keras.backend.backend() == "tensorflow"  # the torch Keras backend exports with torch.onnx
    with _lean_tf2onnx() if tf2onnx else contextlib.nullcontext():
        target.export(str(tmp), format="onnx", input_signature=signature, opset_version=opset, verbose=False)
    if tf2onnx:
        _inline_zip(tmp)


def onnx_refusal(spec: ResNetSpec | None = None) -> str | None:
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


# -- training --------------------------------------------------------------------------------------


def make_optimizer(
    model: Any,
    name: str,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> Any:
    """`resnet_keras.train.make_optimizer` (torch's update rules), made in the model's dtype.

    # FRAMEWORK: optimizer precision — Keras keeps the learning rate in a floatx variable (float32 would
    # round 0.01 to 0.0099999998 for a float64 model); made under the model's dtype it stays exact.
    """
    with _floatx(model.compute_dtype):
        return keras_train.make_optimizer(model, name, lr, momentum, weight_decay, betas, eps)


def stock_optimizer(
    model: Any, name: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eps: float | None = None
) -> Any:
    """Keras' own SGD or Adam with its own conventions (decoupled weight decay, eps on sqrt(v), default
    eps 1e-7), compiled like `make_optimizer`: the naive port the lessons measure."""
    with _floatx(model.compute_dtype):
        if name == "sgd":
            optimizer = keras.optimizers.SGD(
                learning_rate=lr, momentum=np.float64(momentum), weight_decay=weight_decay or None
            )
        else:
            optimizer = keras.optimizers.Adam(lr, **({} if eps is None else {"epsilon": eps}))
        return keras_train.compile_model(model, optimizer)


def train_step(model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """One optimizer step (`train_on_batch`) on an NCHW batch; (mean cross-entropy, correct predictions)."""
    return keras_train.train_step(model, optimizer, _nhwc(model, images), labels)


def predict_logits(model: Any, images: np.ndarray) -> np.ndarray:
    """Logits of one NCHW batch in inference mode."""
    return keras_train.predict_logits(model, _nhwc(model, images))


def train_step_with_gradients(
    model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """The step `train_step` takes, with the same optimizer, but with the gradients kept: the loss and
    every gradient ('{canonical key}' -> numpy, PyTorch layout) before the update.

    `train_on_batch` cannot hand gradients out, so the gradients are taken here with the backend's own
    autodiff and applied with `optimizer.apply`: the same loss, the same update (tested against
    `train_step`, float64).
    """
    variables = model.trainable_variables
    keys = [keras_key(v.path, model.name) for v in variables]
    x = _nhwc(model, images)
    loss, grads = _gradient_function(keras.backend.backend())(model, model.loss, x, labels, variables)
    kept = {k: torch_layout(np.array(keras.ops.convert_to_numpy(g))) for k, g in zip(keys, grads)}
    optimizer.apply(grads, variables)
    return float(keras.ops.convert_to_numpy(loss)), kept


def _gradient_function(backend: str) -> Callable:
    """(model, loss_fn, x, y, variables) -> (loss, grads) for the active Keras backend."""
    if backend == "tensorflow":
        import tensorflow as tf

        def gradient(model, loss_fn, x, y, variables):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            return loss, tape.gradient(loss, variables)

        return gradient
    if backend == "torch":
        import torch

        def gradient(model, loss_fn, x, y, variables):
            for v in variables:
                v.value.grad = None
            loss = loss_fn(torch.from_numpy(y), model(torch.from_numpy(x), training=True))
            loss.backward()
            return loss.detach(), [v.value.grad.detach() for v in variables]

        return gradient
    raise Unavailable(f"training-step gradients run under the tensorflow and torch Keras backends, not {backend!r}")


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


# -- checkpoint files ----------------------------------------------------------------------------------

NATIVE_FORMATS = ("keras-weights", "keras")
"""Checkpoint formats this framework reads and writes itself (see `parity.io.checkpoints.FORMATS`)."""


def read_native(fmt: str, path: Path, spec: ResNetSpec | None) -> tuple[ResNetSpec | None, dict[str, np.ndarray]]:
    """(the spec the file holds, canonical weights) of a `.weights.h5` (needs `spec`) or `.keras` file.

    A `.keras` file loads with safe_mode (no arbitrary code) and must hold a resnet_keras.ResNet.
    """
    if fmt == "keras-weights":
        model = build(spec)
        model.load_weights(str(path))
        return spec, get_weights(model)
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a .keras archive (truncated or not a zip file)")
    model = keras.models.load_model(path, compile=False, safe_mode=True)
    if not isinstance(model, resnet_keras.ResNet):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, not a resnet_keras.ResNet")
    return model.spec, get_weights(model)


def keras_applications_model(
    constructor: str, num_classes: int, in_channels: int, path: Path | None = None, pooling: str | None = None
) -> Any:
    """A keras.applications ResNet (logits head, or none with num_classes 0), with a `.weights.h5` loaded if given.

    Args:
        constructor: its keras.applications name ("ResNet50V2"; `parity.io.keras_apps.CONSTRUCTOR` maps presets).
        num_classes: its classes; 0 builds it with include_top=False.
        in_channels: its input channels.
        path: a `.weights.h5` the model saved (`save_weights`), or None.
        pooling: without a head, "avg", "max" or None (the last map).
    """
    build = getattr(keras.applications, constructor)
    if num_classes:
        head = {"classes": num_classes, "classifier_activation": None}
    else:
        head = {"include_top": False, "pooling": pooling}
    # With its head on, keras.applications wants a static input size; any >= 32 builds the same weights.
    model = build(weights=None, input_shape=(224, 224, in_channels), **head)
    if path is not None:
        model.load_weights(str(path))
    return model


def write_native(fmt: str, weights: Mapping[str, np.ndarray], tmp: Path, spec: ResNetSpec) -> None:
    """`save_weights` (.weights.h5) or `save` (.keras: the spec travels in the model's config)."""
    model = build(spec)
    assign(model, weights)
    if fmt == "keras-weights":
        model.save_weights(str(tmp))
    else:
        model.save(str(tmp))


# -- timing ---------------------------------------------------------------------------------------------

INFERENCE_VARIANTS = ("tf-function", "xla", "predict")


def inference_step(model: Any, x: np.ndarray, variant: str = "predict") -> Callable[[], Any]:
    """A no-argument callable running one inference batch (NCHW `x`) as `variant` runs it:
    `tf.function` or XLA (TensorFlow backend only), or `predict_on_batch` (any backend)."""
    inp = _nhwc(model, x)
    if variant == "predict":
        return lambda: model.predict_on_batch(inp)
    if keras.backend.backend() != "tensorflow":
        raise Unavailable(f"this process runs Keras on {keras.backend.backend()}")
    import tensorflow as tf

    fn = tf.function(lambda t: model(t, training=False), jit_compile=variant == "xla")
    tensor = tf.constant(inp)
    return lambda: fn(tensor).numpy()


# -- lessons: naive ports -------------------------------------------------------------------------------
# The Keras model with one framework difference left unhandled, the way a straightforward port would
# get it wrong; `parity lessons` measures each against the correct port.


def flatten(x: np.ndarray) -> np.ndarray:
    """keras.layers.Flatten of an NCHW map as Keras holds it (NHWC): features in (H, W, C) order."""
    return np.asarray(keras.ops.convert_to_numpy(keras.layers.Flatten()(nhwc(x))))


def zero_padded_pool(x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """What a naive Keras stem does with torch's padded max-pool: ZeroPadding2D, then a 'valid' pool (NCHW)."""
    padded = keras.layers.ZeroPadding2D(padding)(nhwc(x))
    return nchw(np.asarray(keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(kernel, stride)(padded))))


KERAS_DEFAULT_BN_EPS = 1e-3
"""keras.layers.BatchNormalization's default epsilon (torch's is 1e-5)."""


def _same_padding(module: Any) -> dict[str, Callable]:
    """Let Keras pad: 'same' on every padded conv and the stem pool, no explicit ZeroPadding2D."""
    make_conv, make_pool = module.make_conv, module.make_pool

    def conv(plan):
        layer = make_conv(plan)
        layer.padding = "same" if plan.padding else "valid"
        return layer

    def pool(plan):
        layer = make_pool(plan)
        layer.padding = "same"
        return layer

    def pad(plan):
        return keras.layers.Identity(name=f"{module.local_name(plan)}_pad")

    return {"make_conv": conv, "make_pool": pool, "make_pad": pad}


def _bn_eps_default(module: Any) -> dict[str, Callable]:
    """Keep Keras' default BatchNorm epsilon (1e-3) instead of the spec's."""
    make_norm = module.make_norm

    def norm(plan):
        layer = make_norm(plan)
        layer.epsilon = KERAS_DEFAULT_BN_EPS
        return layer

    return {"make_norm": norm}


def _bn_momentum_unconverted(module: Any) -> dict[str, Callable]:
    """Pass torch's momentum (0.1) to Keras as is, where Keras means the weight of the old value."""
    make_norm = module.make_norm

    def norm(plan):
        layer = make_norm(plan)
        layer.momentum = plan.momentum
        return layer

    return {"make_norm": norm}


def _bn_variance_biased(module: Any) -> dict[str, Callable]:
    """Stock keras.layers.BatchNormalization: moving variance updated with the biased variance."""
    return {"BatchNorm": keras.layers.BatchNormalization}


def _default_initializers(module: Any) -> dict[str, Callable]:
    """Keras' default initialisers (Glorot uniform kernels, zero biases) instead of torchvision's."""
    make_conv, make_fc = module.make_conv, module.make_fc

    def conv(plan):
        layer = make_conv(plan)
        layer.kernel_initializer = keras.initializers.GlorotUniform()
        return layer

    def fc(plan):
        layer = make_fc(plan)
        layer.kernel_initializer = keras.initializers.GlorotUniform()
        layer.bias_initializer = keras.initializers.Zeros()
        return layer

    return {"make_conv": conv, "make_fc": fc}


def _avg_pool_valid(module: Any) -> dict[str, Callable]:
    """Keras' default AveragePooling2D padding ('valid') for the avg-down pool: the odd row/column is dropped."""
    make_pool = module.make_pool

    def pool(plan):
        layer = make_pool(plan)
        if plan.kind == "avg":
            layer.padding = "valid"
        return layer

    return {"make_pool": pool}


def _subsample_by_average(module: Any) -> dict[str, Callable]:
    """V2's strided identity written as a 2x2 average (ResNet-D's pool) instead of a strided 1x1 max-pool."""
    make_pool = module.make_pool

    def pool(plan):
        if plan.kind == "max" and plan.kernel == 1:
            return keras.layers.AveragePooling2D(2, plan.stride, padding="same", name=module.local_name(plan))
        return make_pool(plan)

    return {"make_pool": pool}


NAIVE_PORTS: dict[str, Callable[[Any], dict[str, Callable]]] = {
    "avg_pool_valid": _avg_pool_valid,
    "subsample_by_average": _subsample_by_average,
    "same_padding": _same_padding,
    "bn_eps_default": _bn_eps_default,
    "bn_momentum_unconverted": _bn_momentum_unconverted,
    "bn_variance_biased": _bn_variance_biased,
    "default_initializers": _default_initializers,
}


@contextlib.contextmanager
def _naive_factories(difference: str) -> Iterator[None]:
    """While active, `resnet_keras.ResNet(spec)` builds a port with `difference` left unhandled.

    Args:
        difference: one of `NAIVE_PORTS`.
    """
    if difference not in NAIVE_PORTS:
        raise ValueError(f"unknown difference {difference!r}; choose one of {', '.join(NAIVE_PORTS)}")
    module = resnet_keras.model
    patches = NAIVE_PORTS[difference](module)
    saved = {name: getattr(module, name) for name in patches}
    try:
        for name, func in patches.items():
            setattr(module, name, func)
        yield
    finally:
        for name, func in saved.items():
            setattr(module, name, func)


def build_naive(spec: ResNetSpec, difference: str, dtype: str = "float32") -> Any:
    """A `resnet_keras.ResNet` of `spec` with one difference left unhandled (see `NAIVE_PORTS`)."""
    with _naive_factories(difference), _floatx(dtype):
        return resnet_keras.ResNet(spec)


def assign_reshaped(model: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Copy validated canonical weights by reshaping instead of transposing the kernels (a naive port)."""
    for key, variable in tensors(model).items():
        variable.assign(np.asarray(arrays[key]).reshape(tuple(variable.shape)))


if _threads.configured() is not None:  # `--threads N`: applied as the framework starts
    set_threads(_threads.configured())
