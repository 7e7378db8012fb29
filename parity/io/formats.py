"""Checkpoint file formats: one registry (`FORMATS`) of extension, reader, writer and the backend that reads it.

| format | extensions | reader | writer |
|---|---|---|---|
| torch | `.pt`, `.pth` | `torch.load(weights_only=True)` (torch adapter) | `torch.save`, with `num_batches_tracked` |
| safetensors | `.safetensors` | `safetensors.numpy.load_file` (+ the spec this project stored) | `save_file`, spec in the header |
| npz | `.npz` | `np.load(allow_pickle=False)` | `np.savez` |
| keras-weights | `.weights.h5` | `ResNet(spec).load_weights` (Keras adapter; needs the spec) | `save_weights` |
| keras | `.keras` | `keras.models.load_model(safe_mode=True)` (Keras adapter) | `model.save` (spec in its config) |
| keras-h5 | `.h5` | keras.applications files only (`parity.io.libraries`) | never written |

No reader executes pickled code. A format is chosen by its file's extension (`format_of`); every list of formats
the CLI shows comes from here. Files are written by `parity.io.checkpoints`, atomically.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter_named
from parity.core.errors import CheckpointError
from parity.spec import NUM_BATCHES_TRACKED, ResNetSpec

Reader = Callable[[Path, "ResNetSpec | None"], tuple["ResNetSpec | None", dict[str, np.ndarray]]]
"""(path, the spec when the caller knows it) -> (the spec the file records or None, its weights as stored)."""
Writer = Callable[[Mapping[str, np.ndarray], Path, ResNetSpec, "Mapping[str, Any] | None"], None]
"""(canonical weights, the temporary path, spec, metadata) -> writes the whole file."""


@dataclass(frozen=True)
class Format:
    """One checkpoint file format.

    Args:
        name: how reports and errors name it.
        extensions: the file endings it is recognised by (the longest match wins: `.weights.h5` before `.h5`).
        read: its reader; None where another reader takes the files (`refusal` says which).
        write: its writer; None where the format is read only.
        backend: the adapter that reads and writes it (None: numpy and safetensors, no framework).
        needs_spec: the file records no architecture (a `.weights.h5`): reading needs `--arch`.
        metadata: the file carries extra JSON metadata (`write_checkpoint(metadata=...)`).
        refusal: why a reader or writer is missing, in one line.
    """

    name: str
    extensions: tuple[str, ...]
    read: Reader | None
    write: Writer | None
    backend: str | None = None
    needs_spec: bool = False
    metadata: bool = False
    refusal: str = ""


METADATA_PREFIX = "resnet_parity."
"""Keys this project writes into a `.safetensors` header."""


def with_counters(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical weights with torchvision's `num_batches_tracked` counter (0) after each BatchNorm's tensors, so
    `load_state_dict(strict=True)` accepts them."""
    out: dict[str, np.ndarray] = {}
    for key, value in weights.items():
        out[key] = value
        if key.endswith(".running_var"):
            out[key[: -len("running_var")] + NUM_BATCHES_TRACKED] = np.array(0, dtype=np.int64)
    return out


def _native(name: str) -> tuple[Reader, Writer]:
    """The reader and writer of a format its framework's adapter handles."""

    def read(path: Path, spec: ResNetSpec | None) -> tuple[ResNetSpec | None, dict[str, np.ndarray]]:
        return adapter_named(_BACKEND[name]).read_native(name, path, spec)

    def write(weights: Mapping[str, np.ndarray], tmp: Path, spec: ResNetSpec, metadata: Any = None) -> None:
        counted = with_counters(weights) if name == "torch" else weights
        adapter_named(_BACKEND[name]).write_native(name, counted, tmp, spec)

    return read, write


_BACKEND = {"torch": "torch", "keras-weights": "keras", "keras": "keras"}


def _read_safetensors(path: Path, spec: ResNetSpec | None) -> tuple[ResNetSpec | None, dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    stored = read_metadata(path).get("spec")
    held = None
    if stored is not None:  # written by this project: the exact spec, widths and all
        try:
            held = ResNetSpec.from_dict(stored)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: the stored spec is not valid ({exc})") from None
    return held, load_file(str(path))


def _write_safetensors(
    weights: Mapping[str, np.ndarray], tmp: Path, spec: ResNetSpec, metadata: Mapping[str, Any] | None = None
) -> None:
    from safetensors.numpy import save_file

    header = {
        "format": "pt",
        "resnet_parity.arch": spec.name,
        "resnet_parity.variant": spec.variant,
        "resnet_parity.spec": json.dumps(spec.to_dict()),
    }
    header.update({METADATA_PREFIX + k: json.dumps(v) for k, v in (metadata or {}).items()})
    save_file({k: np.ascontiguousarray(v) for k, v in with_counters(weights).items()}, str(tmp), metadata=header)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What `write_checkpoint(metadata=...)` stored in a `.safetensors` header (JSON-decoded, prefix
    dropped, the spec as a dict under 'spec'); {} for other formats or files without it."""
    if Path(path).is_dir() or not str(path).lower().endswith(".safetensors"):
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


def _read_npz(path: Path, spec: ResNetSpec | None) -> tuple[ResNetSpec | None, dict[str, np.ndarray]]:
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
    return None, weights


def _write_npz(weights: Mapping[str, np.ndarray], tmp: Path, spec: ResNetSpec, metadata: Any = None) -> None:
    with open(tmp, "wb") as handle:  # a file object: np.savez would append '.npz' to a name
        np.savez(handle, **weights)  # type: ignore[arg-type]  # numpy's stubs type the keywords as bool


FORMATS: tuple[Format, ...] = (
    Format("torch", (".pth", ".pt"), *_native("torch"), backend="torch"),
    Format("safetensors", (".safetensors",), _read_safetensors, _write_safetensors, metadata=True),
    Format("npz", (".npz",), _read_npz, _write_npz),
    Format("keras-weights", (".weights.h5",), *_native("keras-weights"), backend="keras", needs_spec=True),
    Format("keras", (".keras",), *_native("keras"), backend="keras"),
    Format(
        "keras-h5",
        (".h5",),
        None,
        None,
        refusal="a legacy .h5 is read only for keras.applications ResNets, never written; save as .keras",
    ),
)
"""Every checkpoint format, in the order `--help` lists them."""

EXTENSIONS = tuple(sorted((e for f in FORMATS for e in f.extensions), key=len, reverse=True))
"""Every extension, longest first (the order `format_of` matches them in)."""


def format_named(name: str) -> Format:
    """The format of a name ('torch', 'keras-weights', ...)."""
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise ValueError(f"unknown format {name!r}; formats are {', '.join(f.name for f in FORMATS)}")


def format_of(path: str | os.PathLike[str]) -> Format:
    """The format named by a file's extension; ValueError naming the file for any other."""
    name = Path(path).name.lower()
    for extension in EXTENSIONS:
        if name.endswith(extension):
            return next(f for f in FORMATS if extension in f.extensions)
    raise ValueError(
        f"{path}: unknown checkpoint format; use one of {', '.join(listed())} (the format comes from the extension)"
    )


def listed(writable: bool = False) -> list[str]:
    """The extensions, in FORMATS order (only those written, with `writable`): for help texts and errors."""
    return [e for f in FORMATS if f.write is not None or not writable for e in f.extensions]
