"""Checkpoint files in five formats, read and written as canonical weights, safely.

| extension | format | reader | writer |
|---|---|---|---|
| `.pt`, `.pth` | torchvision state dict | `torch.load(weights_only=True)` | `torch.save` (with `num_batches_tracked`) |
| `.safetensors` | safetensors | `safetensors.numpy.load_file` | `safetensors.numpy.save_file` |
| `.npz` | numpy archive | `np.load(allow_pickle=False)` | `np.savez` |
| `.weights.h5` | Keras weights | `resnet_keras.ResNet(spec).load_weights` | `save_weights` |
| `.keras` | Keras model (spec included) | `keras.models.load_model(safe_mode=True)` | `model.save` |

The framework formats are read and written by the adapter of their framework (`NATIVE`: torch for
`.pt`/`.pth`, Keras for `.weights.h5`/`.keras`); the others here, with numpy and safetensors.
No reader executes pickled code. Every writer goes through `parity.core.files.atomic_write`, so a failed
conversion leaves no file (and an existing one is replaced only with force).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter_named, spec_of
from parity.core.errors import CheckpointError
from parity.core.files import atomic_write
from parity.io import folders, hf, keras_apps, keras_hub
from parity.io.infer import held_sizes, infer_spec
from parity.io.structure import weights_by_structure
from parity.io.weights import WeightMismatchError, get_weights, match_shapes, set_weights
from parity.spec import NUM_BATCHES_TRACKED, ResNetSpec, make_spec

FORMATS = {
    ".weights.h5": "keras-weights",
    ".keras": "keras",
    ".h5": "keras-h5",
    ".safetensors": "safetensors",
    ".npz": "npz",
    ".pth": "torch",
    ".pt": "torch",
}
"""Extension -> format; `.weights.h5` is matched before anything shorter. `.h5` (a legacy full Keras
model) is read, never written, and only for keras.applications ResNets."""

KERAS_FILES = ("keras", "keras-weights", "keras-h5")
"""Formats that may hold a keras.applications Functional instead of a resnet_keras.ResNet."""

NATIVE = {"torch": "torch", "keras-weights": "keras", "keras": "keras"}
"""Format -> the backend whose adapter reads and writes it (`read_native` / `write_native`)."""


def format_of(path: str | os.PathLike) -> str:
    """The format named by a file's extension ('folder' for a directory: a transformers or timm model folder);
    ValueError naming the file for any other."""
    if Path(path).is_dir():
        return "folder"
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
    if fmt == "folder":
        held, weights, _ = folders.read_folder(path)
        if spec is not None and held.canonical_shapes() != spec.canonical_shapes():
            raise CheckpointError(f"{path} holds {_describe(held)}, expected {_describe(spec)}")
        return weights
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        if fmt in KERAS_FILES and keras_apps.is_keras_applications(path):
            held, weights = _read_keras_applications(path)
            if spec is not None and held != spec:
                raise CheckpointError(f"{path} holds {_describe(held)}, expected {_describe(spec)}")
        else:
            if fmt == "keras-h5":
                raise CheckpointError(
                    f"{path}: a legacy .h5 is read only for keras.applications ResNets; save as .keras"
                )
            if fmt == "keras-weights" and spec is None:
                raise ValueError(f"{path}: a .weights.h5 file holds no architecture; pass --arch (and --variant)")
            weights = _READERS[fmt](path, spec)
            if hf.is_hf_state(weights):  # a transformers state dict without its folder: names by rule
                weights = hf.to_canonical(weights, path)
    except (WeightMismatchError, CheckpointError, ValueError):
        raise
    except Exception as exc:  # every library has its own exception types for a bad file
        raise CheckpointError(f"cannot read {path} as a {fmt} checkpoint: {type(exc).__name__}: {exc}") from exc
    return {k: v for k, v in weights.items() if not k.endswith(NUM_BATCHES_TRACKED)}


def _read_safetensors(path: Path, spec: ResNetSpec | None) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def _read_npz(path: Path, spec: ResNetSpec | None) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a .npz archive (not a zip file: corrupt, truncated or another format)")
    weights = {}
    with np.load(path, allow_pickle=False) as archive:
        for key in archive.files:
            try:
                weights[key] = archive[key]
            except ValueError:
                raise CheckpointError(
                    f"{path}: entry {key!r} holds pickled Python objects, not a numeric array; "
                    "a checkpoint holds numeric arrays only, and this entry was not unpickled"
                ) from None
    return weights


def _read_native(path: Path, spec: ResNetSpec | None) -> dict[str, np.ndarray]:
    fmt = format_of(path)
    held, weights = adapter_named(NATIVE[fmt]).read_native(fmt, path, spec)
    if spec is not None and held is not None and held != spec:
        raise CheckpointError(f"{path} holds {_describe(held)}, expected {_describe(spec)}")
    return weights


_READERS = {
    "torch": _read_native,
    "safetensors": _read_safetensors,
    "npz": _read_npz,
    "keras-weights": _read_native,
    "keras": _read_native,
}


def _read_keras_applications(path: Path) -> tuple[ResNetSpec, dict[str, np.ndarray]]:
    """(spec, canonical weights) of a keras.applications model file (the Keras adapter rebuilds a `.weights.h5`)."""

    try:
        return keras_apps.read_file(path, adapter_named("keras").keras_applications_model)
    except (CheckpointError, WeightMismatchError):
        raise
    except Exception as exc:  # h5py and Keras have their own exception types for a bad file
        raise CheckpointError(f"cannot read {path} as a keras.applications model: {type(exc).__name__}: {exc}") from exc


def _describe(spec: ResNetSpec) -> str:
    return f"{spec.name} ({spec.variant}, {spec.num_classes} classes, {spec.in_channels} channels)"


# -- writing ---------------------------------------------------------------------------------------


def write_checkpoint(
    weights: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    spec: ResNetSpec,
    force: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write canonical weights of `spec` to a file, atomically, after checking them against the spec.

    `.pt`/`.pth`/`.safetensors` files get torchvision's `num_batches_tracked` counters (zero) so
    torchvision's `load_state_dict(strict=True)` accepts them.

    Args:
        weights: canonical weights (e.g. `parity.io.weights.get_weights(model)`).
        path: target file; its extension picks the format.
        spec: the architecture the weights belong to.
        force: replace an existing file.
        metadata: `.safetensors` only: more JSON-able entries for its header (see `read_metadata`);
            the full spec is always stored there.
    """
    fmt = format_of(path)
    if fmt == "keras-h5":
        raise ValueError(f"{path}: legacy .h5 files are read, not written; use .keras or .weights.h5")
    if metadata and fmt != "safetensors":
        raise ValueError(f"{path}: only .safetensors files carry metadata")
    arrays = check_against_spec(weights, spec)
    if fmt == "safetensors":
        return atomic_write(path, lambda tmp: _write_safetensors(arrays, tmp, spec, metadata), force=force)
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


def _write_native(fmt: str):
    def write(weights, tmp: Path, spec) -> None:
        counted = _with_counters(weights) if fmt == "torch" else weights
        adapter_named(NATIVE[fmt]).write_native(fmt, counted, tmp, spec)

    return write


METADATA_PREFIX = "resnet_parity."


def _write_safetensors(weights, tmp: Path, spec, metadata: Mapping[str, Any] | None = None) -> None:
    import json

    from safetensors.numpy import save_file

    header = {
        "format": "pt",
        "resnet_parity.arch": spec.name,
        "resnet_parity.variant": spec.variant,
        "resnet_parity.spec": json.dumps(spec.to_dict()),
    }
    header.update({METADATA_PREFIX + k: json.dumps(v) for k, v in (metadata or {}).items()})
    save_file({k: np.ascontiguousarray(v) for k, v in _with_counters(weights).items()}, str(tmp), metadata=header)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """What `write_checkpoint(metadata=...)` stored in a `.safetensors` header (JSON-decoded, prefix
    dropped, the spec as a dict under 'spec'); {} for other formats or files without it."""
    import json

    if format_of(path) != "safetensors":
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            header = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own SafetensorError for a bad header
        raise CheckpointError(f"{path}: not a safetensors file ({exc})") from None
    out = {}
    for key, value in header.items():
        if key.startswith(METADATA_PREFIX) and key not in ("resnet_parity.arch", "resnet_parity.variant"):
            try:
                out[key[len(METADATA_PREFIX) :]] = json.loads(value)
            except json.JSONDecodeError:
                raise CheckpointError(f"{path}: metadata {key!r} is not JSON") from None
    return out


def _write_npz(weights, tmp: Path, spec) -> None:
    with open(tmp, "wb") as handle:  # a file object: np.savez would append '.npz' to a name
        np.savez(handle, **weights)


_WRITERS = {
    "torch": _write_native("torch"),
    "safetensors": _write_safetensors,
    "npz": _write_npz,
    "keras-weights": _write_native("keras-weights"),
    "keras": _write_native("keras"),
}


# -- models and conversion -------------------------------------------------------------------------


def load_checkpoint(model: Any, path: str | os.PathLike, strict: bool = True) -> None:
    """Load a checkpoint file of any format into a model of either backend.

    The file is read and checked in full before the model is touched; on any error the model is
    unchanged.

    Args:
        model: a resnet_torch or resnet_keras model.
        path: a file of one of `FORMATS` (a torchvision `.pth` works as is).
        strict: as in `parity.io.weights.set_weights`.
    """
    spec = spec_of(model)
    weights = read_checkpoint(path, spec)
    try:
        set_weights(model, weights, strict=strict)
    except WeightMismatchError as exc:
        raise exc.with_headline(_which_network(weights, spec, path)) from None


def _which_network(weights: Mapping[str, Any], spec: ResNetSpec, path: Any) -> str:
    """'this file is resnet18 (...); the model is resnet50 (...)', or the closest preset's name."""
    try:
        found = infer_spec(weights)
    except ValueError:
        return f"{path} does not hold {_describe(spec)}"
    return f"{path} holds {_describe(found)}; the model is {_describe(spec)}"


def load_model(
    path: str | os.PathLike,
    backend: str,
    arch: str | None = None,
    variant: str = "torchvision",
    num_classes: int | None = None,
    in_channels: int | None = None,
) -> Any:
    """A new model of `backend` ("torch" or "keras") holding a checkpoint file's weights.

    The architecture comes from the file (see `read_with_spec`) unless `arch` is given. A `.keras`
    file loads with safe_mode, and needs no prior `import resnet_keras`.
    """
    spec, weights = read_with_spec(path, arch, variant, num_classes, in_channels)
    model = adapter_named(backend).build(spec)
    set_weights(model, weights)
    return model


def save_checkpoint(model: Any, path: str | os.PathLike, force: bool = False) -> Path:
    """Write a model's canonical weights to a file of any format (atomically)."""
    return write_checkpoint(get_weights(model), path, spec_of(model), force=force)


def read_with_spec(
    path: str | os.PathLike,
    arch: str | None = None,
    variant: str = "torchvision",
    num_classes: int | None = None,
    in_channels: int | None = None,
) -> tuple[ResNetSpec, dict]:
    """(spec, canonical weights) of a checkpoint file, checked against each other.

    The architecture comes from `arch`/`variant` when given, else from the file: a `.keras` file holds
    its spec, and so does a `.safetensors` file this project wrote; other files are matched against
    every preset by keys and shapes, and where variants share every shape (torchvision and v1) the
    first listed is taken unless `variant` names another.
    `num_classes` and `in_channels` default to what the file holds; given, they must agree with it.

    Args:
        path: a checkpoint of one of `FORMATS`.
        arch: a preset name, or None to infer it.
        variant: the preset variant (with `arch`).
        num_classes, in_channels: expected outputs and input channels, or None.
    """
    fmt = format_of(path)
    if fmt != "folder" and arch is None and folders.is_weights_of_folder(path):
        path, fmt = Path(path).parent, "folder"  # the weights of a model folder: its config.json says the rest
    if fmt == "folder" and arch is None:
        spec, weights, _ = folders.read_folder(path)
    elif fmt == "folder":
        raise ValueError(f"{path}: a model folder holds its architecture in config.json; drop --arch")
    elif fmt in KERAS_FILES and arch is None and Path(path).is_file() and keras_apps.is_keras_applications(path):
        spec, weights = _read_keras_applications(Path(path))
    elif fmt == "keras":
        if not Path(path).is_file():
            raise FileNotFoundError(f"no checkpoint file at {path}")
        spec, weights = adapter_named("keras").read_native(fmt, Path(path), None)
    elif fmt == "keras-weights":
        if arch is None:
            raise ValueError(
                f"{path}: a .weights.h5 file holds no architecture; pass --arch (and --variant, "
                "--num-classes, --in-channels if they differ from the defaults)"
            )
        spec = make_spec(
            arch, variant, num_classes=1000 if num_classes is None else num_classes, in_channels=in_channels or 3
        )
        weights = read_checkpoint(path, spec)
    else:
        weights = read_checkpoint(path)
        spec = None
        stored = read_metadata(path).get("spec") if arch is None else None
        if stored is not None:  # written by this project: the exact spec, widths and all
            try:
                spec = ResNetSpec.from_dict(stored)
            except (TypeError, ValueError) as exc:
                raise CheckpointError(f"{path}: the stored spec is not valid ({exc})") from None
        elif arch is None:
            try:
                found = infer_spec(weights)
            except ValueError as exc:
                if "cannot tell the architecture" not in str(exc):
                    raise
                raise ValueError(
                    f"{path}: {exc}; a network named otherwise is read in structural order with --arch "
                    "(and --variant, --num-classes)"
                ) from None
            # Variants with the same shapes (torchvision / v1, keras_applications / conv_bias) look alike
            # in a file: inference takes the first, a given --variant overrides it.
            if variant == "torchvision" or found.variant == "inferred":
                spec = found
            else:
                arch = found.name
    held = held_sizes(weights)
    for flag, given, key in (
        ("--num-classes", num_classes, "num_classes"),
        ("--in-channels", in_channels, "in_channels"),
    ):
        if given is not None and key in held and given != held[key]:
            source = next((k for k in _HELD_BY[key] if k in weights), None)
            why = f"{source} is {tuple(np.shape(weights[source]))}" if source else "it has no fc: a headless network"
            raise ValueError(f"{flag} {given}, but {path} holds {held[key]} ({why})")
    if spec is None:
        spec = make_spec(arch, variant, **held)
    if arch is not None and f"{spec.stem_plan().conv.name}.weight" not in weights:
        # Not torchvision's names (no stem conv): a tutorial's or a library's own; its layers line up in structural order.
        try:
            weights, _ = weights_by_structure(weights, spec)
        except ValueError as exc:
            raise ValueError(f"{path}: not named as torchvision, and {exc}") from None
    try:
        check_against_spec(weights, spec)
    except WeightMismatchError as exc:
        raise exc.with_headline(_which_network(weights, spec, path)) from None
    return spec, weights


_HELD_BY = {"num_classes": ("fc.weight",), "in_channels": ("conv1.weight", "conv1.0.weight")}


def refuse_same_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """A conversion never writes over its own source (it would read and replace the file it converts)."""
    same = Path(src).resolve() == Path(dst).resolve()
    if same or (Path(src).exists() and Path(dst).exists() and os.path.samefile(src, dst)):
        raise ValueError(f"{dst} is the source file itself; write the conversion to another path")


def convert(
    src: str | os.PathLike, dst: str | os.PathLike, spec: ResNetSpec | None = None, force: bool = False
) -> tuple[Path, ResNetSpec]:
    """Convert a checkpoint between any two formats; returns (written path, spec used).

    Args:
        src: existing file.
        dst: target file (refused if it exists, unless `force`).
        spec: the architecture; inferred from the weights (or read from a `.keras` file) if None.
        force: replace an existing target.
    """
    from parity.core.files import check_target

    format_of(dst)
    refuse_same_file(src, dst)
    check_target(dst, force)
    if spec is None:
        spec, weights = read_with_spec(src)
    else:
        weights = read_checkpoint(src, spec)
    return write_checkpoint(weights, dst, spec, force=force), spec


# -- other libraries' own layouts --------------------------------------------------------------------------

LIBRARIES = ("hf", "timm", "keras-applications", "keras-hub")
"""`convert --to`: what each writes: a transformers folder, a timm Hub folder, a keras.applications file, a
keras-hub ResNetBackbone preset folder."""


def recorded_by(path: str | os.PathLike) -> dict[str, Any]:
    """What a model folder records beside its weights (class names, preprocessing); {} for a plain file."""
    path = Path(path)
    if folders.is_weights_of_folder(path):
        path = path.parent
    return folders.read_folder(path)[2] if path.is_dir() else {}


def write_for_library(
    weights: Mapping[str, Any],
    spec: ResNetSpec,
    dst: str | os.PathLike,
    library: str,
    force: bool = False,
    recorded: Mapping[str, Any] | None = None,
) -> Path:
    """Write canonical weights in a library's own layout, loadable with its own call:

    - "hf": a folder for `transformers.ResNetForImageClassification.from_pretrained(dst)`;
    - "timm": a folder whose config.json names the `architecture` and the `model_args` of its sizes, for
      `timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(file=dst/"model.safetensors",
      num_classes=N), **model_args)` (timm drops a classifier whose size differs from its registered weights'
      unless the overlay gives the count), or the Hub's `hf-hub:` loading, which reads the config itself;
    - "keras-applications": a `.keras` / `.weights.h5` / `.h5` file for `keras.applications.ResNet50V2(weights=dst)`
      and its kin (or `keras.models.load_model` for `.keras`);
    - "keras-hub": a preset folder for `keras_hub.models.ResNetBackbone.from_preset(dst)` (the backbone: no fc).

    A spec the library cannot hold is refused naming the field; nothing is written then.
    """
    if library not in LIBRARIES:
        raise ValueError(f"unknown library {library!r}; choose one of {', '.join(LIBRARIES)}")
    arrays = check_against_spec(weights, spec)
    recorded = dict(recorded or {})
    if library == "hf":
        return hf.write_folder(spec, arrays, dst, recorded.get("labels"), force)
    if library == "timm":
        return folders.write_timm_folder(spec, arrays, dst, recorded, force)
    if library == "keras-hub":
        return keras_hub.write_preset(spec, arrays, dst, force)
    return keras_apps.write_file(spec, arrays, dst, adapter_named("keras").keras_applications_model, force)
