"""Naive Keras ports: the Keras model with one framework difference left unhandled.

Each entry swaps one factory of `resnet_keras.model` while a model is built, so the result keeps
the correct spec (and so compares against the torch model) but gets one detail wrong, the way a
straightforward port would. Used to prove the checks catch real porting mistakes.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

KERAS_DEFAULT_BN_EPS = 1e-3
"""keras.layers.BatchNormalization's default epsilon (torch's is 1e-5)."""


def _same_padding(module: Any) -> dict[str, Callable]:
    """Let Keras pad: 'same' on every padded conv and the stem pool, no explicit ZeroPadding2D."""
    keras = module.keras
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
    return {"BatchNorm": module.keras.layers.BatchNormalization}


def _default_initializers(module: Any) -> dict[str, Callable]:
    """Keras' default initialisers (Glorot uniform kernels, zero biases) instead of torchvision's."""
    keras = module.keras
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


NAIVE_PORTS: dict[str, Callable[[Any], dict[str, Callable]]] = {
    "same_padding": _same_padding,
    "bn_eps_default": _bn_eps_default,
    "bn_momentum_unconverted": _bn_momentum_unconverted,
    "bn_variance_biased": _bn_variance_biased,
    "default_initializers": _default_initializers,
}


@contextlib.contextmanager
def naive_keras(difference: str) -> Iterator[None]:
    """While active, `resnet_keras.ResNet(spec)` builds a port with `difference` left unhandled.

    Args:
        difference: one of `NAIVE_PORTS`.
    """
    if difference not in NAIVE_PORTS:
        raise ValueError(f"unknown difference {difference!r}; choose one of {', '.join(NAIVE_PORTS)}")
    from resnet_keras import model as module

    patches = NAIVE_PORTS[difference](module)
    saved = {name: getattr(module, name) for name in patches}
    try:
        for name, func in patches.items():
            setattr(module, name, func)
        yield
    finally:
        for name, func in saved.items():
            setattr(module, name, func)


def naive_set_weights_reshape(model: Any, weights: dict) -> None:
    """Copy canonical weights into a Keras model by reshaping instead of transposing the kernels."""
    from parity.backends import keras as adapter
    from parity.weights import check_weights

    arrays = check_weights(model, weights)
    for key, variable in adapter.tensors(model).items():
        variable.assign(arrays[key].reshape(tuple(variable.shape)))


def build_naive_keras(spec: Any, difference: str) -> Any:
    """A `resnet_keras.ResNet` of `spec` with one difference left unhandled (see `NAIVE_PORTS`)."""
    import resnet_keras

    with naive_keras(difference):
        return resnet_keras.ResNet(spec)
