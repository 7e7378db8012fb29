"""Framework helper layers of resnet_keras (mirrors resnet_torch/layers.py): Keras layers made to behave
as torch's do where the two differ (BatchNorm's running variance, float64 all the way, Sequential dtype).
"""

from __future__ import annotations

import keras

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
