"""Building, weights and running of resnet_keras models (mirrors `parity.backends.torch.run`).

Arrays cross this boundary as numpy, NCHW, in canonical (torchvision) keys and PyTorch layouts; each array is
converted here, with `parity.core.layout`. The module helpers (`floatx`, `jax_x64`, `to_nhwc`, `to_nchw`) are
shared by the adapter's other modules.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import keras
import numpy as np

import resnet_keras
from parity.backends.interface import Adapter
from parity.core.errors import Unavailable
from parity.core.layout import keras_key, keras_layout, nchw, nhwc, torch_layout, torch_shape
from parity.spec import ResNetSpec


@contextlib.contextmanager
def floatx(dtype: str) -> Iterator[None]:
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


def to_nhwc(model: Any, x: np.ndarray) -> np.ndarray:
    # FRAMEWORK: layout — NCHW -> NHWC at the Keras model's input, in the model's compute dtype (float32 under a
    # mixed policy: each layer casts its input to the policy's compute dtype itself).
    dtype = model.compute_dtype if model.compute_dtype in ("float32", "float64") else "float32"
    return nhwc(x, dtype)


def to_nchw(value: Any) -> np.ndarray:
    if keras.backend.standardize_dtype(value.dtype) in ("bfloat16", "float16"):
        value = keras.ops.cast(value, "float32")
    return nchw(np.asarray(keras.ops.convert_to_numpy(value)))


def _keras_device(device: str) -> str:
    return "gpu:0" if device == "cuda" else "cpu:0"


def sublayer(model: Any, name: str) -> Any:
    """The layer of a canonical dotted name: 'layer3.4' -> the block `4` inside the stage `layer3`."""
    layer = model
    for part in name.split("."):
        children = {child.name: child for child in layer._flatten_layers(include_self=False, recursive=False)}
        if part not in children:
            raise KeyError(f"{model.name} has no layer {name!r} (no {part!r} under {layer.name!r})")
        layer = children[part]
    return layer


def unit_layers(model: Any, name: str) -> list[Any]:
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


def call_layers(layers: list[Any], x: Any) -> Any:
    """`x` through `layers` in order, each in inference mode."""
    out = x
    for layer in layers:
        if getattr(layer, "_call_has_training_arg", True):
            out = layer(out, training=False)
        else:
            out = layer(out)
    return out


MIXED = {"bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
"""Canonical precision -> the Keras dtype policy that runs it."""


class _Float64Compute(keras.dtype_policies.DTypePolicy):
    """Variables stay as stored (float32), every op computes in float64: the fp32 weights, exactly."""

    def _parse_name(self, name: str) -> tuple[str, str]:
        return "float64", "float32"


@contextlib.contextmanager
def _every_layer_under(model: Any, policy: Any) -> Iterator[None]:
    """Every layer of `model` (itself included) computes under dtype `policy` for the block; restored after."""
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    policies = [layer.dtype_policy for layer in layers]
    try:
        for layer in layers:
            layer.dtype_policy = policy
        yield
    finally:
        for layer, old in zip(layers, policies):
            layer.dtype_policy = old


@contextlib.contextmanager
def jax_x64() -> Iterator[None]:
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


class KerasRun(Adapter):
    """Build, place, weigh and run a resnet_keras model."""

    LOW_PRECISION = {name: f"Keras policy {policy}" for name, policy in MIXED.items()}

    # -- building and placing

    def build(self, spec: ResNetSpec, dtype: str = "float32") -> Any:
        """A resnet_keras model of `spec`, built (variables exist), its layers computing in `dtype`."""
        with floatx(dtype):
            return resnet_keras.ResNet(spec)

    @contextlib.contextmanager
    def dtype_scope(self, dtype: str) -> Iterator[None]:
        """Models and optimizers made inside compute in `dtype`; under JAX, float64 needs x64 switched on."""
        with floatx(dtype), jax_x64() if dtype == "float64" else contextlib.nullcontext():
            yield

    def dtype_of(self, model: Any) -> str:
        """The dtype the model computes in ('float32', 'float64')."""
        return keras.backend.standardize_dtype(model.compute_dtype)

    def to_device(self, model: Any, device: str) -> Any:
        """The model as it is: Keras places variables itself (`keras.device` scopes the runs)."""
        return model

    def device_count(self) -> int:
        """Devices Keras can distribute over in this process (JAX backend; 1 elsewhere)."""
        if keras.backend.backend() != "jax":
            return 1
        return len(keras.distribution.list_devices())

    # -- weights

    def tensors(self, model: Any) -> dict[str, Any]:
        """Canonical key -> the model's own variable (weights and BN moving statistics)."""
        if not model.built:
            raise ValueError("the Keras model is not built yet: call it once on an input first")
        return {keras_key(v.path, model.name): v for v in model.weights}

    def get_weights(self, model: Any) -> dict[str, np.ndarray]:
        """Canonical weights as numpy copies in PyTorch layout (kernels transposed)."""
        return {key: torch_layout(np.array(var.numpy())) for key, var in self.tensors(model).items()}

    def get_shapes(self, model: Any) -> dict[str, tuple[int, ...]]:
        return {key: torch_shape(tuple(var.shape)) for key, var in self.tensors(model).items()}

    def assign(self, model: Any, arrays: Mapping[str, np.ndarray]) -> None:
        """Assign validated canonical arrays (see `parity.io.weights.set_weights`)."""
        targets = self.tensors(model)
        for key, value in arrays.items():
            targets[key].assign(keras_layout(value).astype(targets[key].dtype))

    def count_params(self, model: Any) -> tuple[int, int]:
        """(trainable parameters, BN moving-statistic elements) of a model or any of its layers."""
        trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        running = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
        return trainable, running

    def framework_counts(self, model: Any) -> dict[str, int]:
        """Keras' own totals, as `model.summary()` prints them."""
        trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        return {
            "keras_trainable": trainable,
            "keras_non_trainable": model.count_params() - trainable,
            "keras_total": model.count_params(),
        }

    # -- running

    def run_stages(
        self, model: Any, x: np.ndarray, device: str = "cpu", training: bool = False
    ) -> dict[str, np.ndarray]:
        """Stage outputs (stem, layer1.., logits) as NCHW numpy arrays, in inference mode unless `training`
        (BatchNorm on batch statistics; the moving statistics are updated, as a training step would)."""
        # FRAMEWORK: train / eval — Keras takes training= on every call; torch keeps a mode on the module.
        with keras.device(_keras_device(device)):
            outputs = model.forward_stages(to_nhwc(model, x), training=training)
            return {k: to_nchw(v) for k, v in outputs.items()}

    def run_unit(self, model: Any, name: str, x: np.ndarray, device: str = "cpu") -> np.ndarray:
        """One piece of the network alone, in inference mode, on a given NCHW input.

        Args:
            model: a resnet_keras model.
            name: "stem", "head", a block ("layer3.4") or a layer by canonical name ("layer3.4.bn2",
                "layer3.4.downsample.0", "conv1", "maxpool", "avgpool", "fc").
            x: the unit's input (NCHW, or (N, features) for "fc").
            device: "cpu" or "cuda".
        """
        out = to_nhwc(model, x)
        with keras.device(_keras_device(device)):
            return to_nchw(call_layers(unit_layers(model, name), out))

    @contextlib.contextmanager
    def float64(self, model: Any) -> Iterator[Any]:
        """The same model computing in float64 for the block (its weights cast exactly); restored after.

        Every layer gets a dtype policy that computes in float64 over its float32 variables (Keras
        casts them on use), so any change a user made to a layer is kept. Under JAX, x64 is switched on
        for the block (JAX silently computes in float32 otherwise).
        """
        with jax_x64(), _every_layer_under(model, _Float64Compute("float64_compute")):
            yield model

    @contextlib.contextmanager
    def low_precision(self, model: Any, precision: str) -> Iterator[Any]:
        """The same model under Keras' mixed policy for the block (`mixed_bfloat16`, `mixed_float16`): variables
        stay float32, every layer computes in the low dtype, BatchNormalization in float32 inside (Keras casts its
        input up and its output back); restored after.

        # FRAMEWORK: precision — a Keras mixed policy runs BatchNormalization's arithmetic in float32; torch autocast
        # leaves BatchNorm to its input's dtype (bf16 or fp16 arithmetic with fp32 statistics).
        """
        with _every_layer_under(model, keras.dtype_policies.DTypePolicy(MIXED[precision])):
            yield model

    def calibrate(self, model: Any, batches: list[np.ndarray]) -> None:
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
                model(to_nhwc(model, x), training=True)
        finally:
            for norm, momentum in zip(norms, momenta):
                norm.momentum = momentum

    def cuda_available(self) -> bool:
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
    def tf32(self, allow: bool) -> Iterator[None]:
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

    def threads(self) -> int:
        """Threads the Keras backend computes with (TensorFlow's intra-op pool; 0 means all cores)."""
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.config.threading.get_intra_op_parallelism_threads()
        return 0

    def set_threads(self, count: int) -> None:
        """Compute with `count` threads where the backend lets a running process choose (TensorFlow, before
        its first op); JAX reads XLA_FLAGS at start, Keras on torch follows torch's setting."""
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            try:
                tf.config.threading.set_intra_op_parallelism_threads(count)
                tf.config.threading.set_inter_op_parallelism_threads(count)
            except RuntimeError:  # TensorFlow already started its pools
                pass

    def seed(self, value: int) -> None:
        """Seed Keras' generators (a fresh model's initialisers draw from them)."""
        keras.utils.set_random_seed(value)

    def device_name(self, device: str) -> str:
        """The device as a person reads it."""
        return f"{device} (Keras on {keras.backend.backend()})"

    # -- timing

    INFERENCE_VARIANTS = ("tf-function", "xla", "predict")

    def inference_step(self, model: Any, x: np.ndarray, variant: str = "predict") -> Callable[[], Any]:
        """A no-argument callable running one inference batch (NCHW `x`) as `variant` runs it:
        `tf.function` or XLA (TensorFlow backend only), or `predict_on_batch` (any backend)."""
        inp = to_nhwc(model, x)
        if variant == "predict":
            return lambda: model.predict_on_batch(inp)
        if keras.backend.backend() != "tensorflow":
            raise Unavailable(f"this process runs Keras on {keras.backend.backend()}")
        import tensorflow as tf

        fn = tf.function(lambda t: model(t, training=False), jit_compile=variant == "xla")
        tensor = tf.constant(inp)
        return lambda: fn(tensor).numpy()

    # -- lessons

    def flatten(self, x: np.ndarray) -> np.ndarray:
        """keras.layers.Flatten of an NCHW map as Keras holds it (NHWC): features in (H, W, C) order."""
        return np.asarray(keras.ops.convert_to_numpy(keras.layers.Flatten()(nhwc(x))))
