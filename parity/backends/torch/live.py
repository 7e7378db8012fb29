"""Any torch `nn.Module` read as it is (mirrors `parity.backends.keras.live`): its layers with their
hyperparameters and tensors, and its output, for `parity.io.live` and `parity.checks.live`.

Nothing here changes the user's module: it is read through `named_modules()` and run as a copy in eval mode.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from parity.backends.interface import Adapter, LiveLayer

ACTIVATIONS = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid"}
"""The activation modules this project's ResNets use, by the name `LiveLayer.attrs['fn']` gives them."""
PASSIVE = (nn.Identity, nn.Flatten, nn.Dropout)
"""Modules that compute nothing at inference."""


def _pair(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _arrays(module: nn.Module) -> dict[str, np.ndarray]:
    found = {k: v.detach().cpu().float().numpy() for k, v in module.named_parameters(recurse=False)}
    for key in ("running_mean", "running_var"):
        if getattr(module, key, None) is not None:
            found[key] = getattr(module, key).detach().cpu().float().numpy()
    return found


def _layer(name: str, module: nn.Module) -> LiveLayer:
    kind = type(module).__name__
    tensors = _arrays(module)
    if isinstance(module, (nn.Conv2d, nn.Conv1d)):
        kernel = _pair(module.kernel_size)
        if isinstance(module.padding, str):  # torch's 'same' is stride 1 only: symmetric for odd kernels
            padding = tuple(k // 2 for k in kernel) if module.padding == "same" else (0,) * len(kernel)
        else:
            padding = _pair(module.padding)
        attrs = {
            "kernel": kernel,
            "stride": _pair(module.stride),
            "padding": padding,
            "dilation": _pair(module.dilation),
            "groups": module.groups,
            "bias": module.bias is not None,
            "padding_mode": module.padding_mode,
        }
        return LiveLayer(name, "conv", kind, attrs, tensors)
    if isinstance(module, nn.BatchNorm2d):
        attrs = {"eps": module.eps, "momentum": module.momentum, "affine": module.affine}
        return LiveLayer(name, "bn", kind, attrs, tensors)
    if isinstance(module, nn.Linear):
        return LiveLayer(name, "fc", kind, {"bias": module.bias is not None}, tensors)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        attrs = {
            "kernel": _pair(module.kernel_size),
            "stride": _pair(module.stride),
            "padding": _pair(module.padding),
            "ceil_mode": module.ceil_mode,
        }
        return LiveLayer(name, "maxpool" if isinstance(module, nn.MaxPool2d) else "avgpool", kind, attrs, tensors)
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return LiveLayer(name, "globalpool", kind, {"output_size": _pair(module.output_size)}, tensors)
    fn = next((label for cls, label in ACTIVATIONS.items() if type(module) is cls), None)
    if fn is not None:
        return LiveLayer(name, "act", kind, {"fn": fn}, tensors)
    if isinstance(module, PASSIVE):
        return LiveLayer(name, "passive", kind, {}, tensors)
    activation = isinstance(module, (nn.ELU, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.Hardswish, nn.Mish, nn.Tanh, nn.ReLU6))
    return LiveLayer(name, "act" if activation else "other", kind, {"fn": kind.lower()} if activation else {}, tensors)


class TorchLive(Adapter):
    """Read and run any torch module."""

    def owns(self, model: Any) -> bool:
        """True for any torch `nn.Module` (a Keras model under Keras' torch backend is Keras')."""
        return isinstance(model, nn.Module)

    def live_layers(self, model: Any) -> list[LiveLayer]:
        """Every leaf module, and every module holding its own parameters, in registration order."""
        found = []
        for name, module in model.named_modules():
            own = next(module.parameters(recurse=False), None) is not None
            if own or not any(True for _ in module.children()):
                found.append(_layer(name, module))
        return found

    def run_live(self, model: Any, x: np.ndarray, dtype: str = "float32") -> np.ndarray:
        """The module's output for NCHW `x`, computed by an eval-mode copy in `dtype` (the module is untouched)."""
        clone = copy.deepcopy(model).to(device="cpu", dtype=getattr(torch, dtype)).eval()
        with torch.no_grad():
            out = clone(torch.from_numpy(np.ascontiguousarray(x)).to(getattr(torch, dtype)))
        out = getattr(out, "logits", out)  # transformers' output object
        return out.detach().cpu().numpy()

    def load_live(self, model: Any, path: Path, weights: Mapping[str, np.ndarray] | None) -> None:
        """Load a state dict of the module's own names into it: every key and shape must fit (`strict`); BatchNorm
        counters the file lacks are kept."""
        if weights is None:
            raise ValueError(f"{path}: a torch module loads a state dict (.pt, .pth, .safetensors, .npz)")
        state = dict(model.state_dict())
        missing = [k for k in state if k not in weights and not k.endswith("num_batches_tracked")]
        extra = [k for k in weights if k not in state]
        if missing or extra:
            raise ValueError(
                f"{path} does not fit {type(model).__name__}: "
                + "; ".join(
                    f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                    for label, keys in (("missing", missing), ("unexpected", extra))
                    if keys
                )
            )
        for key, value in weights.items():
            if tuple(state[key].shape) != tuple(np.shape(value)):
                raise ValueError(f"{path}: {key} is {tuple(np.shape(value))}, the module's {tuple(state[key].shape)}")
            state[key] = torch.from_numpy(np.ascontiguousarray(value)).to(state[key].dtype)
        model.load_state_dict(state, strict=True)
