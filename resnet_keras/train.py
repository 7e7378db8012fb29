"""Training primitives for resnet_keras models (mirrors resnet_torch/train.py, same names).

Images arrive as normalised NCHW float32 numpy batches from `parity.io.data`; labels as int64.

Keras' own machinery does the work: `compile` binds optimizer, loss and metric to the model and
`train_on_batch` runs the backend's compiled train step (a `tf.function`, an XLA program on JAX, or
eager torch), so each backend trains as a Keras user's `fit` would. We call it per batch rather than
`fit` on a dataset because both backends must see the exact batches `parity.io.data` yields, in order,
with the per-batch loss reported back.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from parity.spec import OPTIMIZERS


def _constant(value: float, dtype: str) -> np.ndarray:
    # FRAMEWORK: constants — under TF, ops.cast(0.9, "float64") goes through float32 (0.89999998);
    # a numpy scalar of the variable's dtype keeps a float64 optimizer exact.
    return np.asarray(value, dtype=keras.backend.standardize_dtype(dtype))


class CoupledDecay:
    """Adds `coupled_decay * w` to each gradient before the update, as torch's `weight_decay` does.

    # FRAMEWORK: weight decay — Keras' `weight_decay=` is decoupled (AdamW-style: w shrinks directly);
    # torch's SGD and Adam add it to the gradient, so it flows through momentum and Adam's moments.
    """

    def __init__(self, *args, coupled_decay: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.coupled_decay = coupled_decay

    def decayed(self, gradient, variable):
        if not self.coupled_decay:
            return gradient
        decay = _constant(self.coupled_decay, variable.dtype)
        return keras.ops.add(gradient, keras.ops.multiply(variable, decay))


class SGD(CoupledDecay, keras.optimizers.SGD):
    """Keras SGD with torch's coupled weight decay.

    # FRAMEWORK: momentum — Keras keeps v = m * v - lr * g (w += v), torch buf = m * buf + g
    # (w -= lr * buf); with a constant lr, v = -lr * buf, the same update.
    """

    def update_step(self, gradient, variable, learning_rate):
        super().update_step(self.decayed(gradient, variable), variable, learning_rate)


class Adam(CoupledDecay, keras.optimizers.Optimizer):
    """Adam as torch computes it.

    # FRAMEWORK: Adam epsilon — Keras' Adam folds the bias corrections into the step size and adds
    # epsilon to sqrt(v): w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps). torch divides
    # first: w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), i.e. Keras' eps is
    # eps * sqrt(1 - b2^t) in torch's terms (31.6x smaller at step 1); Keras' default eps is 1e-7,
    # torch's 1e-8. `parity lessons` measures the gap.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, name="adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.exp_avgs = [self.add_variable_from_reference(v, "exp_avg") for v in variables]
        self.exp_avg_sqs = [self.add_variable_from_reference(v, "exp_avg_sq") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        ops = keras.ops
        dtype = variable.dtype
        gradient = self.decayed(gradient, variable)
        index = self._get_variable_index(variable)
        exp_avg, exp_avg_sq = self.exp_avgs[index], self.exp_avg_sqs[index]
        lr = ops.cast(learning_rate, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = _constant(self.beta_1, dtype), _constant(self.beta_2, dtype)
        bias_correction1 = 1 - ops.power(beta_1, step)
        bias_correction2 = 1 - ops.power(beta_2, step)
        self.assign(exp_avg, ops.add(ops.multiply(exp_avg, beta_1), ops.multiply(gradient, 1 - beta_1)))
        self.assign(
            exp_avg_sq, ops.add(ops.multiply(exp_avg_sq, beta_2), ops.multiply(ops.square(gradient), 1 - beta_2))
        )
        denom = ops.add(ops.divide(ops.sqrt(exp_avg_sq), ops.sqrt(bias_correction2)), _constant(self.epsilon, dtype))
        self.assign_sub(variable, ops.multiply(lr / bias_correction1, ops.divide(exp_avg, denom)))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


def make_optimizer(
    model: Any,
    name: str,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> Any:
    """SGD or Adam with torch's update rules, compiled into the model with cross-entropy on logits.

    Args:
        model: a resnet_keras model.
        name: "sgd" or "adam".
        lr: learning rate (constant).
        momentum: SGD momentum, torch's convention (equal to Keras' for a constant lr).
        weight_decay: L2 coefficient added to every gradient (torch's `weight_decay`).
        betas, eps: Adam's, in torch's convention.
    """
    if name == "sgd":
        # A numpy float64 momentum: TF would round a Python 0.9 through float32 (see parity.checks.train_steps).
        optimizer = SGD(learning_rate=lr, momentum=np.float64(momentum), coupled_decay=weight_decay)
    elif name == "adam":
        optimizer = Adam(learning_rate=lr, beta_1=betas[0], beta_2=betas[1], epsilon=eps, coupled_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    return compile_model(model, optimizer)


def compile_model(model: Any, optimizer: Any) -> Any:
    """Compile `model` with `optimizer`, mean cross-entropy on logits and accuracy; returns the optimizer."""
    # FRAMEWORK: compile — Keras binds optimizer, loss and metrics to the model; torch keeps them apart.
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    optimizer.build(model.trainable_variables)
    return optimizer


def train_step(model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """One optimizer step in training mode; returns (mean cross-entropy, correct predictions) before the step."""
    # FRAMEWORK: layout — NHWC here, NCHW in resnet_torch.train.
    logs = model.train_on_batch(images, labels, return_dict=True)
    correct = round(float(logs["accuracy"]) * len(labels))
    return float(logs["loss"]), correct


def predict_logits(model: Any, images: np.ndarray) -> np.ndarray:
    """Logits of one batch in inference mode (BN on moving statistics)."""
    out = model.predict_on_batch(images)
    return np.asarray(out)
