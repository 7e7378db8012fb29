"""Canonical weights: one dict of numpy arrays for a model of either backend.

Keys are torchvision's `state_dict` keys, layouts PyTorch's (conv OIHW, dense out x in), BN running
statistics included, `num_batches_tracked` left out (a counter, not a weight; accepted and ignored
on input). The mapping from Keras variable paths is a rule, not a table: drop the model's name,
`/` -> `.`, then rename the last part (kernel/gamma -> weight, beta -> bias, moving_* -> running_*).
"""

from __future__ import annotations

import sys
from typing import Any, Mapping

import numpy as np

from parity.spec import NUM_BATCHES_TRACKED, ResNetSpec

KERAS_TO_TORCH_SUFFIX = {
    "kernel": "weight",
    "gamma": "weight",
    "bias": "bias",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}

# FRAMEWORK: weight layout — Keras conv kernels are HWIO, torch's OIHW; Keras dense kernels are
# in x out, torch's out x in.
KERAS_FROM_TORCH_AXES = {4: (2, 3, 1, 0), 2: (1, 0)}
TORCH_FROM_KERAS_AXES = {4: (3, 2, 0, 1), 2: (1, 0)}


class WeightMismatchError(ValueError):
    """A set of weights does not fit a model; lists every offending key."""

    def __init__(self, missing: list[str], unexpected: list[str], mismatched: list[str]):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): " + ", ".join(missing))
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): " + ", ".join(unexpected))
        if mismatched:
            parts.append(f"{len(mismatched)} mis-shaped tensor(s): " + ", ".join(mismatched))
        super().__init__("weights do not fit the model (nothing was changed): " + "; ".join(parts))


def backend_of(model: Any) -> str:
    """'keras' or 'torch' for a model of ours (or any Keras model / torch module).

    Keras is asked first: under Keras' torch backend a Keras model is also a torch.nn.Module.
    """
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        return "keras"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    raise TypeError(f"expected a resnet_torch or resnet_keras model, got {type(model).__name__}")


def spec_of(model: Any) -> ResNetSpec:
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ResNetSpec):
        raise TypeError(f"{type(model).__name__} carries no ResNetSpec (.spec); build it from one")
    return spec


def keras_key(path: str, model_name: str) -> str:
    """`resnet/layer2/0/downsample/0/kernel` -> `layer2.0.downsample.0.weight`."""
    parts = path.split("/")
    if model_name in parts:
        parts = parts[parts.index(model_name) + 1 :]
    *layers, variable = parts
    if variable not in KERAS_TO_TORCH_SUFFIX:
        raise KeyError(f"Keras variable {path!r} has no canonical name (unknown '{variable}')")
    return ".".join(layers + [KERAS_TO_TORCH_SUFFIX[variable]])


def _keras_variables(model: Any) -> dict[str, Any]:
    if not model.built:
        raise ValueError("the Keras model is not built yet: call it once on an input first")
    return {keras_key(v.path, model.name): v for v in model.weights}


def _torch_tensors(model: Any) -> dict[str, Any]:
    return {k: v for k, v in model.state_dict(keep_vars=True).items() if not k.endswith(NUM_BATCHES_TRACKED)}


def torch_layout(value: np.ndarray) -> np.ndarray:
    """A Keras kernel (HWIO conv / in x out dense) in PyTorch's layout; other arrays as they are."""
    axes = TORCH_FROM_KERAS_AXES.get(value.ndim)
    return np.ascontiguousarray(value.transpose(axes)) if axes else value


def torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The PyTorch-layout shape of a Keras variable's shape (as `torch_layout` would give)."""
    axes = TORCH_FROM_KERAS_AXES.get(len(shape))
    return tuple(int(shape[a]) for a in axes) if axes else tuple(int(d) for d in shape)


def keras_layout(value: np.ndarray) -> np.ndarray:
    """A PyTorch weight (OIHW conv / out x in dense) in Keras' layout; other arrays as they are."""
    axes = KERAS_FROM_TORCH_AXES.get(value.ndim)
    return np.ascontiguousarray(value.transpose(axes)) if axes else value


def flatten_weight_nchw_to_nhwc(weight: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    """Reorder the columns of an fc weight trained on torch's flatten of (C, H, W) for Keras' (H, W, C).

    # FRAMEWORK: flatten order — only for heads that flatten a spatial map; ResNet pools to 1x1 first.
    """
    out = weight.shape[0]
    return np.ascontiguousarray(
        weight.reshape(out, channels, height, width).transpose(0, 2, 3, 1).reshape(out, -1)
    )


def get_weights(model: Any) -> dict[str, np.ndarray]:
    """Canonical weights of a model of either backend (copies, float32 as stored).

    Args:
        model: a `resnet_torch.ResNet` or a built `resnet_keras.ResNet`.
    """
    if backend_of(model) == "torch":
        return {k: v.detach().cpu().numpy().copy() for k, v in _torch_tensors(model).items()}
    return {key: torch_layout(np.array(var.numpy())) for key, var in _keras_variables(model).items()}


def match_shapes(expected: Mapping[str, tuple[int, ...]], weights: Mapping[str, Any],
                 strict: bool = True) -> dict[str, np.ndarray]:
    """Check weights against expected key -> shape; return them as float arrays in expected order.

    Raises WeightMismatchError listing every missing (when strict), unexpected (when strict) and
    mis-shaped or non-float key. `num_batches_tracked` counters are ignored. Nothing is changed.
    """
    given = {k: v for k, v in weights.items() if not k.endswith(NUM_BATCHES_TRACKED)}
    missing = [k for k in expected if k not in given] if strict else []
    unexpected = [k for k in given if k not in expected] if strict else []
    mismatched = []
    arrays = {}
    for key, shape in expected.items():
        if key not in given:
            continue
        value = np.asarray(given[key])
        if tuple(value.shape) != tuple(shape):
            mismatched.append(f"{key} (expected {tuple(shape)}, got {tuple(value.shape)})")
        elif not np.issubdtype(value.dtype, np.floating):
            mismatched.append(f"{key} (expected a float tensor, got dtype {value.dtype})")
        else:
            arrays[key] = value
    if missing or unexpected or mismatched:
        raise WeightMismatchError(missing, unexpected, mismatched)
    return arrays


def check_weights(model: Any, weights: Mapping[str, Any], strict: bool = True) -> dict[str, np.ndarray]:
    """Validate canonical weights against a model (see `match_shapes`)."""
    return match_shapes(get_shapes(model), weights, strict)


def get_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Canonical key -> PyTorch-layout shape, as the model holds them."""
    if backend_of(model) == "torch":
        return {k: tuple(v.shape) for k, v in _torch_tensors(model).items()}
    return {key: torch_shape(tuple(var.shape)) for key, var in _keras_variables(model).items()}


def set_weights(model: Any, weights: Mapping[str, Any], strict: bool = True) -> None:
    """Load canonical weights into a model of either backend.

    Everything is validated before anything is assigned, so on error the model is unchanged.

    Args:
        model: a `resnet_torch.ResNet` or a built `resnet_keras.ResNet`.
        weights: canonical key -> array (numpy, or anything `np.asarray` takes) in PyTorch layout.
        strict: require every key to be present and no extra key; shapes are always checked.
    """
    arrays = check_weights(model, weights, strict=strict)
    if backend_of(model) == "torch":
        import torch

        tensors = _torch_tensors(model)
        with torch.no_grad():
            for key, value in arrays.items():
                target = tensors[key]
                target.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(target.dtype))
        return
    variables = _keras_variables(model)
    for key, value in arrays.items():
        variables[key].assign(keras_layout(value).astype(variables[key].dtype))


def copy_weights(src: Any, dst: Any, strict: bool = True) -> None:
    """Copy every canonical weight from one model to another (any backend to any backend).

    Args:
        src: the model to read.
        dst: the model to write; must be of the same spec (shapes are checked key by key).
        strict: as in `set_weights`.
    """
    set_weights(dst, get_weights(src), strict=strict)


def random_weights(spec: ResNetSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded canonical weights with realistic, non-identity BatchNorm parameters and statistics.

    Convs follow torchvision's init (kaiming normal, fan_out); BN gamma/beta and running
    mean/variance are drawn so BN really transforms its input (never the identity), and the last BN
    of each residual branch gets a small gamma, as in trained ResNets, so activations stay O(1)
    through 152 layers.

    Args:
        spec: the architecture.
        seed: seed of numpy's default generator; same seed, same weights, on any machine.
    """
    rng = np.random.default_rng(seed)
    shapes = spec.canonical_shapes()
    last_norms = {f"{plan.name}.{plan.norms[-1].name}" for plan in spec.block_plans()}
    weights: dict[str, np.ndarray] = {}
    for key, shape in shapes.items():
        module, kind = key.rsplit(".", 1)
        if f"{module}.running_mean" not in shapes:  # a conv or the fc
            weight_shape = shapes[f"{module}.weight"]
            if kind == "weight" and len(shape) == 4:
                fan_out = shape[0] * shape[2] * shape[3]
                value = rng.normal(0.0, np.sqrt(2.0 / fan_out), shape)
            else:  # fc weight, fc bias, conv bias: nn.Linear's U(-1/sqrt(fan_in), ...)
                bound = 1.0 / np.sqrt(np.prod(weight_shape[1:]))
                value = rng.uniform(-bound, bound, shape)
        elif kind == "weight":
            low, high = (0.1, 0.4) if module in last_norms else (0.5, 1.5)
            value = rng.uniform(low, high, shape)
        elif kind == "bias":
            value = rng.normal(0.0, 0.1, shape)
        elif kind == "running_mean":
            value = rng.normal(0.0, 0.2, shape)
        else:  # running_var
            value = rng.uniform(0.5, 2.0, shape)
        weights[key] = value.astype(np.float32)
    return weights
