"""Checkpoint files in five formats, read and written as canonical weights, safely.

| extension | format | reader | writer |
|---|---|---|---|
| `.pt`, `.pth` | torchvision state dict | `torch.load(weights_only=True)` | `torch.save` (with `num_batches_tracked`) |
| `.safetensors` | safetensors | `safetensors.numpy.load_file` | `safetensors.numpy.save_file` |
| `.npz` | numpy archive | `np.load(allow_pickle=False)` | `np.savez` |
| `.weights.h5` | Keras weights | `resnet_keras.ResNet(spec).load_weights` | `save_weights` |
| `.keras` | Keras model (spec included) | `keras.models.load_model(safe_mode=True)` | `model.save` |

No reader executes pickled code. Every writer goes through `parity.files.atomic_write`, so a failed
conversion leaves no file (and an existing one is replaced only with force).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from parity.files import atomic_write
from parity.spec import ARCHS, NUM_BATCHES_TRACKED, VARIANTS, ResNetSpec, make_spec
from parity.weights import WeightMismatchError, get_weights, match_shapes, set_weights, spec_of

FORMATS = {
    ".weights.h5": "keras-weights",
    ".keras": "keras",
    ".safetensors": "safetensors",
    ".npz": "npz",
    ".pth": "torch",
    ".pt": "torch",
}
"""Extension -> format; `.weights.h5` is matched before anything shorter."""


class CheckpointError(ValueError):
    """A file that cannot be read as the checkpoint its name says it is."""


def format_of(path: str | os.PathLike) -> str:
    """The format named by a file's extension; ValueError naming the file for any other."""
    name = Path(path).name.lower()
    for extension, fmt in FORMATS.items():
        if name.endswith(extension):
            return fmt
    raise ValueError(
        f"{path}: unknown checkpoint format; use one of {', '.join(FORMATS)} (the format comes from the extension)"
    )


# -- reading ---------------------------------------------------------------------------------------


def read_checkpoint(path: str | os.PathLike, spec: ResNetSpec | None = None) -> dict[str, np.ndarray]:
    """Canonical weights stored in a file (`num_batches_tracked` counters dropped).

    Args:
        path: a file of one of `FORMATS`.
        spec: the architecture; needed for `.weights.h5` (a weights file holds no architecture).
    """
    path = Path(path)
    fmt = format_of(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if fmt == "keras-weights" and spec is None:
        raise ValueError(f"{path}: a .weights.h5 file holds no architecture; pass --arch (and --variant)")
    try:
        weights = _READERS[fmt](path, spec)
    except (WeightMismatchError, CheckpointError):
        raise
    except Exception as exc:  # every library has its own exception types for a bad file
        raise CheckpointError(f"cannot read {path} as a {fmt} checkpoint: {type(exc).__name__}: {exc}") from exc
    return {k: v for k, v in weights.items() if not k.endswith(NUM_BATCHES_TRACKED)}


def _read_torch(path: Path, spec: ResNetSpec | None) -> dict[str, np.ndarray]:
    import torch

    # weights_only=True: tensors and plain containers only, never arbitrary pickled objects.
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = _unwrap(state, path)
    weights = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        weights[key] = value.detach().cpu().numpy()
    return weights


def _unwrap(state: Any, path: Path) -> Mapping[str, Any]:
    """Accept a bare state dict, or one under 'state_dict' / 'model' as training scripts save it."""
    if isinstance(state, Mapping):
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), Mapping) and len(state) <= 4:
                state = state[wrapper]
                break
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a state dict, found a {type(state).__name__}")
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _read_safetensors(path: Path, spec: ResNetSpec | None) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def _read_npz(path: Path, spec: ResNetSpec | None) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def _read_keras_weights(path: Path, spec: ResNetSpec) -> dict[str, np.ndarray]:
    import resnet_keras

    model = resnet_keras.ResNet(spec)
    model.load_weights(str(path))
    return get_weights(model)


def _read_keras(path: Path, spec: ResNetSpec | None) -> dict[str, np.ndarray]:
    model = load_keras_model(path)
    if spec is not None and spec_of(model) != spec:
        raise CheckpointError(f"{path} holds {_describe(spec_of(model))}, expected {_describe(spec)}")
    return get_weights(model)


def load_keras_model(path: str | os.PathLike) -> Any:
    """A resnet_keras model from a `.keras` file, loaded with safe_mode (no arbitrary code)."""
    import keras

    import resnet_keras

    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a .keras archive (truncated or not a zip file)")
    model = keras.models.load_model(path, compile=False, safe_mode=True)
    if not isinstance(model, resnet_keras.ResNet):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, not a resnet_keras.ResNet")
    return model


_READERS = {
    "torch": _read_torch,
    "safetensors": _read_safetensors,
    "npz": _read_npz,
    "keras-weights": _read_keras_weights,
    "keras": _read_keras,
}


def _describe(spec: ResNetSpec) -> str:
    return f"{spec.name} ({spec.variant}, {spec.num_classes} classes, {spec.in_channels} channels)"


# -- writing ---------------------------------------------------------------------------------------


def write_checkpoint(weights: Mapping[str, np.ndarray], path: str | os.PathLike, spec: ResNetSpec,
                     force: bool = False) -> Path:
    """Write canonical weights of `spec` to a file, atomically, after checking them against the spec.

    `.pt`/`.pth`/`.safetensors` files get torchvision's `num_batches_tracked` counters (zero) so
    torchvision's `load_state_dict(strict=True)` accepts them.

    Args:
        weights: canonical weights (e.g. `parity.weights.get_weights(model)`).
        path: target file; its extension picks the format.
        spec: the architecture the weights belong to.
        force: replace an existing file.
    """
    fmt = format_of(path)
    arrays = check_against_spec(weights, spec)
    return atomic_write(path, lambda tmp: _WRITERS[fmt](arrays, tmp, spec), force=force)


def check_against_spec(weights: Mapping[str, Any], spec: ResNetSpec) -> dict[str, np.ndarray]:
    """Weights in canonical order after a strict check of every key and shape against the spec."""
    return match_shapes(spec.canonical_shapes(), weights)


def _with_counters(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in weights.items():
        out[key] = value
        if key.endswith(".running_var"):
            out[key[: -len("running_var")] + NUM_BATCHES_TRACKED] = np.array(0, dtype=np.int64)
    return out


def _write_torch(weights, tmp: Path, spec) -> None:
    import torch

    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in _with_counters(weights).items()}, tmp)


def _write_safetensors(weights, tmp: Path, spec) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in _with_counters(weights).items()}, str(tmp),
              metadata={"format": "pt", "resnet_parity.arch": spec.name, "resnet_parity.variant": spec.variant})


def _write_npz(weights, tmp: Path, spec) -> None:
    with open(tmp, "wb") as handle:  # a file object: np.savez would append '.npz' to a name
        np.savez(handle, **weights)


def _write_keras_weights(weights, tmp: Path, spec) -> None:
    import resnet_keras

    model = resnet_keras.ResNet(spec)
    set_weights(model, weights)
    model.save_weights(str(tmp))


def _write_keras(weights, tmp: Path, spec) -> None:
    import resnet_keras

    model = resnet_keras.ResNet(spec)
    set_weights(model, weights)
    model.save(str(tmp))


_WRITERS = {
    "torch": _write_torch,
    "safetensors": _write_safetensors,
    "npz": _write_npz,
    "keras-weights": _write_keras_weights,
    "keras": _write_keras,
}


# -- models and conversion -------------------------------------------------------------------------


def load_checkpoint(model: Any, path: str | os.PathLike, strict: bool = True) -> None:
    """Load a checkpoint file of any format into a model of either backend.

    The file is read and checked in full before the model is touched; on any error the model is
    unchanged.

    Args:
        model: a resnet_torch or resnet_keras model.
        path: a file of one of `FORMATS` (a torchvision `.pth` works as is).
        strict: as in `parity.weights.set_weights`.
    """
    set_weights(model, read_checkpoint(path, spec_of(model)), strict=strict)


def save_checkpoint(model: Any, path: str | os.PathLike, force: bool = False) -> Path:
    """Write a model's canonical weights to a file of any format (atomically)."""
    return write_checkpoint(get_weights(model), path, spec_of(model), force=force)


def infer_spec(weights: Mapping[str, Any]) -> ResNetSpec:
    """The preset spec whose canonical keys and shapes the weights match exactly.

    num_classes, in_channels and the stem are read off `fc.weight` and `conv1.weight`.
    """
    fc, conv1 = weights.get("fc.weight"), weights.get("conv1.weight")
    if fc is None or conv1 is None or np.ndim(fc) != 2 or np.ndim(conv1) != 4:
        raise ValueError("cannot tell the architecture: no fc.weight / conv1.weight of the usual rank")
    shapes = {k: tuple(np.shape(v)) for k, v in weights.items() if not k.endswith(NUM_BATCHES_TRACKED)}
    overrides = {"num_classes": int(np.shape(fc)[0]), "in_channels": int(np.shape(conv1)[1]),
                 "stem": "imagenet" if np.shape(conv1)[2] == 7 else "cifar"}
    for arch in ARCHS:
        for variant in VARIANTS:
            spec = make_spec(arch, variant, **overrides)
            if spec.canonical_shapes() == shapes:
                return spec
    raise ValueError(f"no preset architecture has exactly these {len(shapes)} keys and shapes; pass --arch")


def convert(src: str | os.PathLike, dst: str | os.PathLike, spec: ResNetSpec | None = None,
            force: bool = False) -> tuple[Path, ResNetSpec]:
    """Convert a checkpoint between any two formats; returns (written path, spec used).

    Args:
        src: existing file.
        dst: target file (refused if it exists, unless `force`).
        spec: the architecture; inferred from the weights (or read from a `.keras` file) if None.
        force: replace an existing target.
    """
    from parity.files import check_target

    format_of(dst)
    check_target(dst, force)
    if spec is None and format_of(src) == "keras":
        spec = spec_of(load_keras_model(src))
    weights = read_checkpoint(src, spec)
    spec = spec or infer_spec(weights)
    return write_checkpoint(weights, dst, spec, force=force), spec
