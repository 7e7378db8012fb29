"""The lessons' naive ports: the Keras model with one framework difference left unhandled, the way a
straightforward port would get it wrong; `resnet-parity lessons` measures each against the correct port.

Each port is a set of factories (`resnet_keras.layers.Layers`) passed to `resnet_keras.ResNet(spec, layers=...)`:
the correct factories wrapped or replaced, nothing patched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

import resnet_keras
from parity.backends.interface import Adapter
from parity.backends.keras.run import floatx
from parity.core.layout import nchw, nhwc
from parity.spec import ConvPlan, HeadPlan, NormPlan, PoolPlan, ResNetSpec
from resnet_keras.layers import LAYERS, Layers, local_name

KERAS_DEFAULT_BN_EPS = 1e-3
"""keras.layers.BatchNormalization's default epsilon (torch's is 1e-5)."""


def _same_padding() -> Layers:
    """Let Keras pad: 'same' on every padded conv and the stem pool, no explicit ZeroPadding2D."""

    def conv(plan: ConvPlan) -> keras.layers.Layer:
        layer = LAYERS.conv(plan)
        layer.padding = "same" if plan.padding else "valid"
        return layer

    def pool(plan: PoolPlan) -> keras.layers.Layer:
        layer = LAYERS.pool(plan)
        layer.padding = "same"
        return layer

    def pad(plan: ConvPlan | PoolPlan) -> keras.layers.Layer:
        return keras.layers.Identity(name=f"{local_name(plan)}_pad")

    return dataclasses.replace(LAYERS, conv=conv, pool=pool, pad=pad)


def _bn_eps_default() -> Layers:
    """Keep Keras' default BatchNorm epsilon (1e-3) instead of the spec's."""

    def norm(plan: NormPlan) -> keras.layers.Layer:
        layer = LAYERS.norm(plan)
        layer.epsilon = KERAS_DEFAULT_BN_EPS
        return layer

    return dataclasses.replace(LAYERS, norm=norm)


def _bn_momentum_unconverted() -> Layers:
    """Pass torch's momentum (0.1) to Keras as is, where Keras means the weight of the old value."""

    def norm(plan: NormPlan) -> keras.layers.Layer:
        layer = LAYERS.norm(plan)
        layer.momentum = plan.momentum
        return layer

    return dataclasses.replace(LAYERS, norm=norm)


def _bn_variance_biased() -> Layers:
    """Stock keras.layers.BatchNormalization: moving variance updated with the biased variance."""

    def norm(plan: NormPlan) -> keras.layers.Layer:
        return keras.layers.BatchNormalization.from_config(LAYERS.norm(plan).get_config())

    return dataclasses.replace(LAYERS, norm=norm)


def _default_initializers() -> Layers:
    """Keras' default initialisers (Glorot uniform kernels, zero biases) instead of torchvision's."""

    def conv(plan: ConvPlan) -> keras.layers.Layer:
        layer = LAYERS.conv(plan)
        layer.kernel_initializer = keras.initializers.GlorotUniform()
        return layer

    def fc(plan: HeadPlan) -> keras.layers.Layer:
        layer = LAYERS.fc(plan)
        layer.kernel_initializer = keras.initializers.GlorotUniform()
        layer.bias_initializer = keras.initializers.Zeros()
        return layer

    return dataclasses.replace(LAYERS, conv=conv, fc=fc)


def _avg_pool_valid() -> Layers:
    """Keras' default AveragePooling2D padding ('valid') for the avg-down pool: the odd row/column is dropped."""

    def pool(plan: PoolPlan) -> keras.layers.Layer:
        layer = LAYERS.pool(plan)
        if plan.kind == "avg":
            layer.padding = "valid"
        return layer

    return dataclasses.replace(LAYERS, pool=pool)


def _subsample_by_average() -> Layers:
    """V2's strided identity written as a 2x2 average (ResNet-D's pool) instead of a strided 1x1 max-pool."""

    def pool(plan: PoolPlan) -> keras.layers.Layer:
        if plan.kind == "max" and plan.kernel == 1:
            return keras.layers.AveragePooling2D(2, plan.stride, padding="same", name=local_name(plan))
        return LAYERS.pool(plan)

    return dataclasses.replace(LAYERS, pool=pool)


NAIVE_PORTS: dict[str, Callable[[], Layers]] = {
    "avg_pool_valid": _avg_pool_valid,
    "subsample_by_average": _subsample_by_average,
    "same_padding": _same_padding,
    "bn_eps_default": _bn_eps_default,
    "bn_momentum_unconverted": _bn_momentum_unconverted,
    "bn_variance_biased": _bn_variance_biased,
    "default_initializers": _default_initializers,
}
"""Difference -> the factories of a Keras port that leaves it unhandled."""


class KerasNaive(Adapter):
    """Naive ports (`build_naive`) and the naive operations the lessons measure."""

    def naive_ports(self) -> tuple[str, ...]:
        """The differences `build_naive` can leave unhandled."""
        return tuple(NAIVE_PORTS)

    def build_naive(self, spec: ResNetSpec, difference: str, dtype: str = "float32") -> Any:
        """A `resnet_keras.ResNet` of `spec` with one difference left unhandled (see `NAIVE_PORTS`)."""
        if difference not in NAIVE_PORTS:
            return super().build_naive(spec, difference, dtype)  # refused, naming what there is
        with floatx(dtype):
            return resnet_keras.ResNet(spec, layers=NAIVE_PORTS[difference]())

    def zero_padded_pool(self, x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
        """What a naive Keras stem does with torch's padded max-pool: ZeroPadding2D, then a 'valid' pool (NCHW)."""
        padded = keras.layers.ZeroPadding2D(padding)(nhwc(x))
        return nchw(np.asarray(keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(kernel, stride)(padded))))

    def assign_reshaped(self, model: Any, arrays: Mapping[str, np.ndarray]) -> None:
        """Copy validated canonical weights by reshaping instead of transposing the kernels (a naive port)."""
        for key, variable in self.tensors(model).items():
            variable.assign(np.asarray(arrays[key]).reshape(tuple(variable.shape)))
