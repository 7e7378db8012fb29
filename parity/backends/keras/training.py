"""Training steps, optimizers and their state for resnet_keras models (mirrors `parity.backends.torch.training`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

import resnet_keras.distributed
import resnet_keras.train as keras_train
from parity.backends.interface import Adapter
from parity.backends.keras.run import floatx, to_nhwc
from parity.core.errors import Unavailable
from parity.core.layout import keras_key, keras_layout, torch_layout

SLOTS = ("momentums", "exp_avgs", "exp_avg_sqs")
"""Per-variable optimizer slots: Keras SGD's velocities; our torch-rule Adam's moments."""


class KerasTraining(Adapter):
    """torch's update rules in Keras (`resnet_keras.train`), and Keras' own for the lessons."""

    def data_parallel(self) -> Any:
        """The engine of data-parallel training: `resnet_keras.distributed` (keras.distribution, JAX)."""
        return resnet_keras.distributed

    def make_optimizer(
        self,
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
        with floatx(model.compute_dtype):
            return keras_train.make_optimizer(model, name, lr, momentum, weight_decay, betas, eps)

    def stock_optimizer(
        self,
        model: Any,
        name: str,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eps: float | None = None,
    ) -> Any:
        """Keras' own SGD or Adam with its own conventions (decoupled weight decay, eps on sqrt(v), default
        eps 1e-7), compiled like `make_optimizer`: the naive port the lessons measure."""
        with floatx(model.compute_dtype):
            if name == "sgd":
                optimizer = keras.optimizers.SGD(
                    learning_rate=lr, momentum=np.float64(momentum), weight_decay=weight_decay or None
                )
            else:
                optimizer = keras.optimizers.Adam(lr, **({} if eps is None else {"epsilon": eps}))
            return keras_train.compile_model(model, optimizer)

    def train_step(self, model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
        """One optimizer step (`train_on_batch`) on an NCHW batch; (mean cross-entropy, correct predictions)."""
        return keras_train.train_step(model, optimizer, to_nhwc(model, images), labels)

    def predict_logits(self, model: Any, images: np.ndarray) -> np.ndarray:
        """Logits of one NCHW batch in inference mode."""
        return keras_train.predict_logits(model, to_nhwc(model, images))

    def train_step_with_gradients(
        self, model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray
    ) -> tuple[float, dict[str, np.ndarray]]:
        """The step `train_step` takes, with the same optimizer, but with the gradients kept: the loss and
        every gradient ('{canonical key}' -> numpy, PyTorch layout) before the update.

        `train_on_batch` cannot hand gradients out, so the gradients are taken here with the backend's own
        autodiff and applied with `optimizer.apply`: the same loss, the same update (tested against
        `train_step`, float64).
        """
        variables = model.trainable_variables
        keys = [keras_key(v.path, model.name) for v in variables]
        x = to_nhwc(model, images)
        loss, grads = _gradient_function(keras.backend.backend())(model, model.loss, x, labels, variables)
        kept = {k: torch_layout(np.array(keras.ops.convert_to_numpy(g))) for k, g in zip(keys, grads)}
        optimizer.apply(grads, variables)
        return float(keras.ops.convert_to_numpy(loss)), kept

    def optimizer_state(self, model: Any, optimizer: Any) -> dict[str, np.ndarray]:
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

    def load_optimizer_state(self, model: Any, optimizer: Any, state: Mapping[str, np.ndarray]) -> None:
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
