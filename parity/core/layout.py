"""Layouts and names: the one place a PyTorch layout or name becomes a Keras one and back.

Canonical weights are in PyTorch's layouts (conv OIHW, dense out x in) under torchvision's keys;
canonical images and activations are NCHW. Keras holds conv kernels HWIO, dense kernels in x out, and
images NHWC; its variable paths are `resnet/layer2/0/downsample/0/kernel`. Every conversion between
the two is written here once, as numpy, and every caller (the Keras adapter, the readers of other
libraries' files, the lessons) uses these functions.
"""

from __future__ import annotations

import numpy as np

KERAS_TO_TORCH_SUFFIX = {
    "kernel": "weight",
    "gamma": "weight",
    "bias": "bias",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}

KERAS_VARIABLES = {
    "Conv2D": ("kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "Dense": ("kernel", "bias"),
}
"""Each weighted Keras layer's variables in the order Keras stores them (a weights file's `vars/0`, `vars/1`, ...)."""

# FRAMEWORK: weight layout — Keras conv kernels are HWIO, torch's OIHW (1-D: WIO and OIW); Keras dense
# kernels are in x out, torch's out x in.
KERAS_FROM_TORCH_AXES = {4: (2, 3, 1, 0), 3: (2, 1, 0), 2: (1, 0)}
TORCH_FROM_KERAS_AXES = {4: (3, 2, 0, 1), 3: (2, 1, 0), 2: (1, 0)}

# FRAMEWORK: layout — torch images are NCHW, Keras images NHWC (1-D: NCL and NLC).
NHWC_FROM_NCHW = (0, 2, 3, 1)
NCHW_FROM_NHWC = (0, 3, 1, 2)
NLC_FROM_NCL = (0, 2, 1)


def keras_key(path: str, model_name: str) -> str:
    """`resnet/layer2/0/downsample/0/kernel` -> `layer2.0.downsample.0.weight`."""
    parts = path.split("/")
    if model_name in parts:
        parts = parts[parts.index(model_name) + 1 :]
    *layers, variable = parts
    if variable not in KERAS_TO_TORCH_SUFFIX:
        raise KeyError(f"Keras variable {path!r} has no canonical name (unknown '{variable}')")
    return ".".join(layers + [KERAS_TO_TORCH_SUFFIX[variable]])


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


def nhwc(x: np.ndarray, dtype: str | None = None) -> np.ndarray:
    """An NCHW batch as NHWC, an NCL one as NLC (contiguous; cast to `dtype` when given); 2-D arrays (features)
    as they are."""
    x = np.asarray(x)
    if x.ndim == 4:
        x = x.transpose(NHWC_FROM_NCHW)
    elif x.ndim == 3:
        x = x.transpose(NLC_FROM_NCL)
    x = np.ascontiguousarray(x)
    return x.astype(dtype) if dtype is not None else x


def nchw(x: np.ndarray) -> np.ndarray:
    """An NHWC batch as NCHW, an NLC one as NCL; 2-D arrays (logits, features) as they are."""
    x = np.asarray(x)
    axes = {3: NLC_FROM_NCL, 4: NCHW_FROM_NHWC}.get(x.ndim)
    return x.transpose(axes) if axes else x


def flatten_weight_nchw_to_nhwc(weight: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    """Reorder the columns of an fc weight trained on torch's flatten of (C, H, W) for Keras' (H, W, C).

    # FRAMEWORK: flatten order — only for heads that flatten a spatial map; ResNet pools to 1x1 first.
    """
    out = weight.shape[0]
    return np.ascontiguousarray(weight.reshape(out, channels, height, width).transpose(0, 2, 3, 1).reshape(out, -1))
