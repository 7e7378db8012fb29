"""The layers of resnet_keras and the factories that make them from the spec's plans (mirrors resnet_torch/layers.py).

`Layers` is the set of factories a `ResNet` builds with; `LAYERS` is the correct one. A variant (a naive port
the lessons measure, another attention module) is `dataclasses.replace(LAYERS, norm=...)` passed to
`ResNet(spec, layers=...)`: nothing is patched. The Keras layers below behave as torch's do where the two
differ (BatchNorm's running variance, float64 all the way, Sequential dtype, -inf padding).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras

from parity.spec import AttnPlan, ConvPlan, HeadPlan, NormPlan, PoolPlan

# FRAMEWORK: layout — Keras images are NHWC (channels_last); torch images are NCHW.
CHANNEL_AXIS = -1


@keras.saving.register_keras_serializable(package="resnet_keras")
class BatchNorm(keras.layers.BatchNormalization):
    """Keras BatchNormalization whose moving variance follows torch's running_var update.

    # FRAMEWORK: BN running variance — in training mode both normalise the batch with its biased
    # variance, but torch feeds the unbiased one (x n / (n - 1)) into running_var, Keras the biased.
    In inference it normalises with the moving statistics, as Keras' own does.
    """

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self.renorm or not (self.center and self.scale):
            return super().call(inputs, training=training, mask=mask)
        # FRAMEWORK: dtype — Keras' own BN computes in result_type(inputs.dtype, "float32"), which is
        # float32 for float64 inputs under its torch and JAX backends; torch's keeps the input's dtype.
        # Half-precision inputs are still normalised in float32, as Keras does.
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        dtype = "float32" if dtype in ("float16", "bfloat16") else dtype
        inputs = keras.ops.cast(inputs, dtype)
        if training and self.trainable:
            axes = [i for i in range(len(inputs.shape)) if i != len(inputs.shape) + CHANNEL_AXIS]
            mean, variance = keras.ops.moments(inputs, axes=axes)
            count = keras.ops.cast(keras.ops.size(inputs) // inputs.shape[CHANNEL_AXIS], inputs.dtype)
            unbiased = variance * count / keras.ops.maximum(count - 1.0, 1.0)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + unbiased * (1.0 - self.momentum))
        else:
            mean = keras.ops.cast(self.moving_mean, dtype)
            variance = keras.ops.cast(self.moving_variance, dtype)
        outputs = keras.ops.batch_normalization(
            inputs,
            mean,
            variance,
            axis=CHANNEL_AXIS,
            offset=keras.ops.cast(self.beta, dtype),
            scale=keras.ops.cast(self.gamma, dtype),
            epsilon=self.epsilon,
        )
        return keras.ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="resnet_keras")
class GlobalAveragePooling(keras.layers.GlobalAveragePooling2D):
    """GlobalAveragePooling2D that averages a float64 map in float64, as torch's AdaptiveAvgPool2d does.

    # FRAMEWORK: dtype — keras.ops.mean computes in result_type(x.dtype, "float32"), float32 for a
    # float64 map under the torch and JAX backends; a sum divided by the count keeps float64.
    """

    def call(self, inputs):
        if keras.backend.standardize_dtype(inputs.dtype) != "float64":
            return super().call(inputs)
        shape = keras.ops.shape(inputs)
        count = keras.ops.cast(shape[1] * shape[2], "float64")
        return keras.ops.sum(inputs, axis=[1, 2], keepdims=self.keepdims) / count


@keras.saving.register_keras_serializable(package="resnet_keras")
class Dense(keras.layers.Dense):
    """keras.layers.Dense that multiplies float64 inputs in float64, as torch's nn.Linear does.

    # FRAMEWORK: dtype — under Keras' torch backend keras.ops.matmul returns float32 for float64
    # operands (its dtype promotion does not read torch dtypes); einsum keeps float64.
    """

    def call(self, inputs, training=None):
        if keras.backend.standardize_dtype(inputs.dtype) != "float64":
            return super().call(inputs)
        out = keras.ops.einsum("ni,io->no", inputs, keras.ops.cast(self.kernel, "float64"))
        out = out + keras.ops.cast(self.bias, "float64")
        return out


@keras.saving.register_keras_serializable(package="resnet_keras")
class Sequential(keras.Sequential):
    """keras.Sequential that runs its layers in order on whatever dtype comes in, as torch's does.

    # FRAMEWORK: dtype — keras.Sequential casts its input to the dtype it was built with (float32);
    # torch's nn.Sequential never casts. Running the layers in order keeps a float64 input float64,
    # so the same model can be run in float64 (parity's float64 pass) without a silent fp32 step.
    """

    @property
    def input_dtype(self):
        # keras.Sequential answers its input layer's dtype here; a layer's own is its compute dtype.
        return super(keras.Sequential, self).input_dtype

    def call(self, inputs, training=None, mask=None):
        out = inputs
        for layer in self.layers:
            out = layer(out, training=training) if layer._call_has_training_arg else layer(out)
        return out


@keras.saving.register_keras_serializable(package="resnet_keras")
class NegInfPadding2D(keras.layers.Layer):
    """Symmetric -inf padding of an NHWC map, so a max-pool behind it never picks a padded cell.

    # FRAMEWORK: max-pool padding — torch's MaxPool2d pads with -inf; Keras has only ZeroPadding2D.
    """

    def __init__(self, padding: int, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, inputs):
        p = self.padding
        return keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=float("-inf"))

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = 2 * self.padding
        return (n, None if h is None else h + grow, None if w is None else w + grow, c)

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": self.padding}


DATA_FORMAT = "channels_last"


def local_name(plan: ConvPlan | NormPlan | PoolPlan | HeadPlan | AttnPlan) -> str:
    """The Keras layer name of a plan: the last part of its canonical name."""
    # FRAMEWORK: naming — torch names a child by attribute or Sequential index and joins the path
    # with '.'; Keras joins layer names with '/' and (under its torch backend) refuses '.' in them.
    # So `downsample.0` is the layer `0` inside the Sequential `downsample`.
    return plan.name.rsplit(".", 1)[-1]


# -- factories: one plan in, one layer out -----------------------------------------------------------------


def make_conv(plan: ConvPlan) -> keras.layers.Layer:
    """A conv with torchvision's init (kaiming normal, fan_out, relu gain)."""
    # FRAMEWORK: padding — 'valid' here with the symmetric padding a separate layer (`make_pad`),
    # because TF's 'same' on a strided conv puts the odd pixel bottom/right, torch pads symmetrically;
    # 'same' only where the spec asks for TF's padding.
    # FRAMEWORK: init — kaiming_normal_(fan_out, relu) is VarianceScaling(2, fan_out, untruncated).
    return keras.layers.Conv2D(
        plan.out_channels,
        kernel_size=plan.kernel,
        strides=plan.stride,
        padding="same" if plan.same else "valid",
        use_bias=plan.bias,
        groups=plan.groups,
        data_format=DATA_FORMAT,
        kernel_initializer=keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
        bias_initializer="zeros",
        name=local_name(plan),
    )


def make_pad(plan: ConvPlan | PoolPlan) -> keras.layers.Layer:
    """Symmetric zero padding in front of a conv or pool; Identity where the plan has none or is 'same'."""
    if plan.padding == 0 or plan.same:
        return keras.layers.Identity(name=f"{local_name(plan)}_pad")
    return keras.layers.ZeroPadding2D(plan.padding, data_format=DATA_FORMAT, name=f"{local_name(plan)}_pad")


def make_norm(plan: NormPlan) -> keras.layers.Layer:
    """BatchNorm with the spec's eps; momentum converted from PyTorch's convention."""
    # FRAMEWORK: BN momentum — torch: running = (1 - m) * running + m * batch;
    # Keras: moving = m' * moving + (1 - m') * batch. So m' = 1 - m (0.1 -> 0.9).
    return BatchNorm(
        axis=CHANNEL_AXIS,
        epsilon=plan.eps,
        momentum=1.0 - plan.momentum,
        gamma_initializer="zeros" if plan.zero_init else "ones",
        name=local_name(plan),
    )


def make_pool(plan: PoolPlan) -> keras.layers.Layer:
    """The stem's max-pool, avg-down's average pool or V2's strided 1x1 max-pool."""
    if plan.kind == "avg":
        # FRAMEWORK: average pool edge — TF's 'same' keeps the odd row/column as a window of its own and
        # averages only its real cells, as torch's ceil_mode=True, count_include_pad=False; 'valid' drops it.
        return keras.layers.AveragePooling2D(
            plan.kernel, plan.stride, padding="same", data_format=DATA_FORMAT, name=local_name(plan)
        )
    # FRAMEWORK: max-pool padding — Keras pads with zeros (`make_pad`), torch with -inf. The pool
    # follows a ReLU, so every input is >= 0 and a zero never wins over a real value.
    # With TF's 'same' the pool ignores padded cells, as torch's -inf does.
    return keras.layers.MaxPooling2D(
        pool_size=plan.kernel,
        strides=plan.stride,
        padding="same" if plan.same else "valid",
        data_format=DATA_FORMAT,
        name=local_name(plan),
    )


def make_global_pool(plan: HeadPlan) -> keras.layers.Layer:
    """The head's global pool: average, max, or none for a backbone."""
    # FRAMEWORK: pooling — keepdims so the flatten below reads like torch's.
    if plan.pooling is None:
        return keras.layers.Identity()
    if plan.pooling == "avg":
        return GlobalAveragePooling(data_format=DATA_FORMAT, keepdims=True)
    return keras.layers.GlobalMaxPooling2D(data_format=DATA_FORMAT, keepdims=True)


def make_fc(plan: HeadPlan) -> keras.layers.Layer:
    """The classifier, with nn.Linear's init."""
    # FRAMEWORK: init — nn.Linear's default is U(-1/sqrt(in), 1/sqrt(in)) for weight and bias;
    # Keras' default is Glorot uniform and zero bias.
    bound = 1.0 / math.sqrt(plan.in_features)
    return Dense(
        plan.out_features,
        kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound),
        name=local_name(plan),
    )


def _spatial_mean(inputs):
    """The mean over H and W of an NHWC map, (N, C); in float64 for a float64 map, as torch's mean."""
    # FRAMEWORK: dtype — keras.ops.mean computes float64 maps in float32 under the torch and JAX backends.
    shape = keras.ops.shape(inputs)
    count = keras.ops.cast(shape[1] * shape[2], inputs.dtype)
    return keras.ops.sum(inputs, axis=[1, 2]) / count


class SqueezeExcite(keras.layers.Layer):
    """Squeeze-excitation (timm's SEModule): global average, 1x1 conv down, ReLU, 1x1 conv up, sigmoid gate.

    Args:
        plan: the block's `AttnPlan` ('se'; its convs `fc1`, `fc2`).
    """

    def __init__(self, plan: AttnPlan, **kwargs):
        super().__init__(name=plan.name, **kwargs)
        squeeze, excite = plan.convs
        self.fc1 = make_conv(squeeze)
        self.relu = keras.layers.ReLU()
        self.fc2 = make_conv(excite)

    def call(self, x):
        scale = _spatial_mean(x)
        scale = keras.ops.expand_dims(keras.ops.expand_dims(scale, 1), 1)
        scale = self.fc1(scale)
        scale = self.relu(scale)
        scale = self.fc2(scale)
        out = x * keras.ops.sigmoid(scale)
        return out


class EfficientChannelAttention(keras.layers.Layer):
    """ECA (timm's EcaModule): global average, a 1-D conv across the channels, sigmoid gate.

    Args:
        plan: the block's `AttnPlan` ('eca'; its conv `conv`, rank 1).
    """

    def __init__(self, plan: AttnPlan, **kwargs):
        super().__init__(name=plan.name, **kwargs)
        (conv,) = plan.convs
        # FRAMEWORK: padding — 'same' on a stride-1 conv of odd kernel pads (k - 1) / 2 on both sides, as torch.
        self.conv = keras.layers.Conv1D(
            1, conv.kernel, padding="same", use_bias=conv.bias, kernel_initializer="he_normal", name=local_name(conv)
        )

    def call(self, x):
        # FRAMEWORK: layout — the channels are the 1-D conv's length: (N, C, 1) here, (N, 1, C) in torch.
        scale = keras.ops.expand_dims(_spatial_mean(x), -1)
        scale = self.conv(scale)
        scale = keras.ops.sigmoid(scale)
        out = x * keras.ops.expand_dims(keras.ops.transpose(scale, (0, 2, 1)), 1)
        return out


ATTENTION: dict[str, Callable[[AttnPlan], keras.layers.Layer]] = {
    "se": SqueezeExcite,
    "eca": EfficientChannelAttention,
}
"""Attention kind (`AttnPlan.kind`) -> the layer class that computes it."""


def make_attn(plan: AttnPlan) -> keras.layers.Layer:
    """The block's channel attention, by kind (`ATTENTION`)."""
    if plan.kind not in ATTENTION:
        raise ValueError(f"resnet_keras has no attention {plan.kind!r}; it builds {', '.join(ATTENTION) or 'none'}")
    return ATTENTION[plan.kind](plan)


@dataclass(frozen=True)
class Layers:
    """The factories a ResNet builds its layers with, one per kind of plan.

    Args:
        conv: ConvPlan -> conv.
        pad: ConvPlan or PoolPlan -> the symmetric padding in front of it.
        norm: NormPlan -> BatchNorm.
        pool: PoolPlan -> max or average pool.
        global_pool: HeadPlan -> the head's global pool.
        fc: HeadPlan -> the classifier.
        attn: AttnPlan -> the block's channel attention.
    """

    conv: Callable[[ConvPlan], keras.layers.Layer] = make_conv
    # FRAMEWORK: padding — a torch conv or pool pads itself; here a layer in front of it does.
    pad: Callable[[ConvPlan | PoolPlan], keras.layers.Layer] = make_pad
    norm: Callable[[NormPlan], keras.layers.Layer] = make_norm
    pool: Callable[[PoolPlan], keras.layers.Layer] = make_pool
    global_pool: Callable[[HeadPlan], keras.layers.Layer] = make_global_pool
    fc: Callable[[HeadPlan], keras.layers.Layer] = make_fc
    attn: Callable[[AttnPlan], keras.layers.Layer] = make_attn


LAYERS = Layers()
"""The factories of the correct model."""
