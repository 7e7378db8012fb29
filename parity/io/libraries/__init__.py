"""Other libraries' own layouts: one `Library` interface, one module per library, one registry (`LIBRARIES`).

| name | reads | writes |
|---|---|---|
| transformers | a `save_pretrained` folder (`config.json` "model_type": "resnet"), a bare state dict named its way | the same folder |
| timm | a Hub folder (`config.json` "architecture") | the same folder |
| keras-hub | a `ResNetBackbone` preset folder | the same folder |
| keras-applications | a `.keras`, legacy `.h5` or `.weights.h5` file holding its Functional ResNet | the same files |

A library's `refusal(spec)` is decided by a round trip: the spec is described in the library's own terms
(`describe`: its config) and read back (`spec_of`); the first field that comes back different is what the
library cannot hold. `convert --to` and every list of libraries derive from `LIBRARIES`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter_named
from parity.core.errors import CheckpointError
from parity.spec import NUM_BATCHES_TRACKED, ResNetSpec

Read = tuple[ResNetSpec, dict[str, np.ndarray], dict[str, Any]]
"""(spec, canonical weights, what the source records beside them: class names, mean, std, input size)."""

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
"""The weights of a transformers or timm folder, in the order they are looked for."""


class Library(ABC):
    """One library's files: recognise them, read them as canonical weights and a spec, write them back.

    Attributes:
        NAME: its name on the command line (`convert --to NAME`).
        WRITES: what `write` makes, for help texts.
        FOLDER: whether its files are folders (a `config.json` beside the weights).
    """

    NAME: str
    WRITES: str
    FOLDER: bool = True

    @abstractmethod
    def detect(self, path: Path) -> bool:
        """Whether `path` is this library's: its folder, the weights file inside one, or its own file."""

    @abstractmethod
    def read(self, path: Path) -> Read:
        """(spec, canonical weights, recorded) of a path `detect` accepted."""

    @abstractmethod
    def describe(self, spec: ResNetSpec) -> Any:
        """The library's own description of `spec` (its config); ValueError where it has no field for it."""

    @abstractmethod
    def spec_of(self, description: Any) -> ResNetSpec:
        """The network the library builds from its description."""

    @abstractmethod
    def title(self, description: Any) -> str:
        """How a refusal names the library's network ("timm's resnet50d")."""

    @abstractmethod
    def write_checked(
        self, spec: ResNetSpec, weights: Mapping[str, Any], dst: Path, recorded: Mapping[str, Any], force: bool
    ) -> Path:
        """Write a spec `refusal` accepted, atomically; the path written."""

    def refusal(self, spec: ResNetSpec) -> str | None:
        """Why the library cannot hold `spec` (the first field its round trip changes), or None."""
        try:
            description = self.describe(spec)
            back = self.spec_of(description)
        except ValueError as exc:
            return str(exc)
        differ = spec.differences(back)
        if not differ:
            return None
        field = differ[0]
        return (
            f"{self.title(description)} has no {field}={getattr(spec, field)!r} "
            f"(it builds {field}={getattr(back, field)!r})"
        )

    def check_target(self, dst: Path) -> None:
        """Refuse a folder library's target named like a checkpoint file (`out.safetensors`): nothing is written."""
        from parity.io.formats import EXTENSIONS, format_of

        if self.FOLDER and dst.name.lower().endswith(EXTENSIONS):
            raise ValueError(
                f"{dst}: {self.NAME} writes a folder (config.json beside the weights), and this name is a "
                f"{format_of(dst).name} file's; give the folder a name without a file extension"
            )

    def write(
        self,
        spec: ResNetSpec,
        weights: Mapping[str, Any],
        dst: str | Path,
        recorded: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> Path:
        """Write canonical weights of `spec` in the library's own layout; refused naming the field it cannot hold,
        with nothing written."""
        self.check_target(Path(dst))
        why = self.refusal(spec)
        if why:
            raise ValueError(f"{dst}: cannot write {spec.name} for {self.NAME}: {why}")
        return self.write_checked(spec, weights, Path(dst), dict(recorded or {}), force)

    def names(self, state: Mapping[str, Any], source: Any) -> dict[str, Any] | None:
        """A bare state dict named this library's way, renamed to canonical keys; None when it is not."""
        return None


def read_config(path: Path) -> dict[str, Any]:
    """A folder's config.json, refused in one line when it is not readable JSON."""
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not a JSON object")
    return config


def peek_config(folder: Path) -> dict[str, Any]:
    """A folder's config.json if it is readable JSON, else {} (for recognising a folder, never refusing)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return config if isinstance(config, dict) else {}


def folder_weights(folder: Path) -> dict[str, np.ndarray]:
    """The first weight file of a transformers or timm folder (`model.safetensors`, else `pytorch_model.bin`)."""
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if name.endswith(".safetensors"):
            from safetensors.numpy import load_file

            try:
                state = load_file(str(path))
            except Exception as exc:  # safetensors raises its own error type
                raise CheckpointError(f"{path}: not a safetensors file ({exc})") from None
        else:
            state = adapter_named("torch").read_native("torch", path, None)[1]
        return {k: v for k, v in state.items() if not k.endswith(NUM_BATCHES_TRACKED)}
    raise CheckpointError(f"{folder}: no weights ({' or '.join(WEIGHT_FILES)}) beside config.json")


def folder_of(path: Path, weight_files: tuple[str, ...] = WEIGHT_FILES) -> Path:
    """The folder of a path that is a model folder or one of its weight files."""
    return path.parent if path.is_file() and path.name in weight_files else path


def _registry() -> dict[str, Library]:
    from parity.io.libraries.keras_applications import KerasApplications
    from parity.io.libraries.keras_hub import KerasHub
    from parity.io.libraries.timm import Timm
    from parity.io.libraries.transformers import Transformers

    # keras-hub before keras.applications: a preset's model.weights.h5 is a Functional's weights file too
    return {lib.NAME: lib for lib in (Transformers(), Timm(), KerasHub(), KerasApplications())}


LIBRARIES: dict[str, Library] = _registry()
"""Every library, by name, in the order paths are recognised (`library_of`)."""


def library_named(name: str) -> Library:
    """A library by its name; ValueError listing them for another."""
    if name not in LIBRARIES:
        raise ValueError(f"unknown library {name!r}; choose one of {', '.join(LIBRARIES)}")
    return LIBRARIES[name]


def library_of(path: str | Path) -> Library | None:
    """The library whose folder or file `path` is, or None (recognised from its listing, nothing loaded)."""
    path = Path(path)
    return next((lib for lib in LIBRARIES.values() if lib.detect(path)), None)


def read_library(path: str | Path) -> Read:
    """(spec, canonical weights, recorded) of a library's folder or file; refused in one line when no library's."""
    path = Path(path)
    library = library_of(path)
    if library is not None:
        return library.read(path)
    if path.is_dir():
        raise folder_refusal(path)
    raise CheckpointError(f"{path}: not a folder or file of {', '.join(LIBRARIES)}")


def folder_refusal(folder: Path) -> CheckpointError:
    """What is said of a folder no library recognises."""
    if not (folder / "config.json").is_file():
        return CheckpointError(f"{folder}: a model folder needs a config.json ({_folder_kinds()})")
    read_config(folder / "config.json")  # unreadable JSON is said as such
    return CheckpointError(f"{folder / 'config.json'}: not a model folder of {_folder_kinds()}")


def _folder_kinds() -> str:
    return ", ".join(lib.NAME for lib in LIBRARIES.values() if lib.FOLDER)
