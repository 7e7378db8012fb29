"""Checkpoints as canonical weights: read any file or library folder, write any format or library layout, convert.

Files are recognised in one order: a library's own folder or file (`parity.io.libraries`: transformers and timm
folders, keras-hub presets, keras.applications files), else a checkpoint format by its extension
(`parity.io.formats`). Every writer goes through `parity.core.files.atomic_write` / `atomic_folder`, so a failed
conversion leaves nothing (and an existing file is replaced only with force). No reader executes pickled code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from parity.backends import adapter_named, spec_of
from parity.core.errors import CheckpointError, one_line
from parity.core.files import atomic_write, check_target
from parity.io.formats import Format, format_of
from parity.io.infer import held_sizes, infer_spec
from parity.io.libraries import LIBRARIES, Read, folder_refusal, library_named, library_of
from parity.io.live import assumptions
from parity.io.structure import weights_by_structure
from parity.io.weights import WeightMismatchError, get_weights, match_shapes, set_weights
from parity.spec import NUM_BATCHES_TRACKED, ResNetSpec, layout_name, make_spec

# -- reading ---------------------------------------------------------------------------------------


def read_file(path: Path, spec: ResNetSpec | None = None) -> tuple[ResNetSpec | None, dict[str, np.ndarray]]:
    """(the spec the file records or None, canonical weights) of a checkpoint file of any format; a state dict
    named another library's way (transformers') is renamed by that library's rule."""
    fmt = format_of(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if fmt.read is None:
        raise CheckpointError(f"{path}: {fmt.refusal}")
    try:
        held, weights = fmt.read(path, spec)
        for library in LIBRARIES.values():
            renamed = library.names(weights, path)
            if renamed is not None:
                weights = renamed
                break
    except (WeightMismatchError, CheckpointError, ValueError):
        raise
    except Exception as exc:  # every library has its own exception types for a bad file
        raise CheckpointError(f"cannot read {path} as a {fmt.name} checkpoint: {one_line(exc)}") from exc
    return held, {k: v for k, v in weights.items() if not k.endswith(NUM_BATCHES_TRACKED)}


def read_checkpoint(path: str | os.PathLike[str], spec: ResNetSpec | None = None) -> dict[str, np.ndarray]:
    """Canonical weights stored in a file or library folder (`num_batches_tracked` counters dropped).

    Args:
        path: a checkpoint of one of `parity.io.formats.FORMATS`, or a library's folder or file.
        spec: the architecture expected; needed for `.weights.h5` (a weights file holds no architecture).
    """
    path = Path(path)
    library = library_of(path)
    if library is not None:
        held, weights, _ = library.read(path)
        if spec is not None and held.differences(spec) and _same_shapes(held, spec):
            raise CheckpointError(f"{path} holds {_describe(held)}, expected {_describe(spec)}")
        return weights
    if path.is_dir():
        raise folder_refusal(path)
    fmt = format_of(path)
    if fmt.needs_spec and spec is None:
        raise ValueError(f"{path}: a .weights.h5 file holds no architecture; pass --arch (and --variant)")
    recorded_spec, weights = read_file(path, spec)
    if (
        spec is not None
        and recorded_spec is not None
        and recorded_spec.differences(spec)
        and _same_shapes(recorded_spec, spec)
    ):
        # same shapes, another network (v1 vs v1.5, eps): only the file's own spec can say; where the shapes
        # differ, loading names the keys that do not fit
        raise CheckpointError(f"{path} holds {_describe(recorded_spec)}, expected {_describe(spec)}")
    return weights


def _same_shapes(a: ResNetSpec, b: ResNetSpec) -> bool:
    return a.canonical_shapes() == b.canonical_shapes()


def read_with_spec(
    path: str | os.PathLike[str],
    arch: str | None = None,
    variant: str = "torchvision",
    num_classes: int | None = None,
    in_channels: int | None = None,
) -> tuple[ResNetSpec, dict[str, np.ndarray]]:
    """(spec, canonical weights) of a checkpoint file or library folder, checked against each other (`read_source`)."""
    spec, weights, _ = read_source(path, arch, variant, num_classes, in_channels)
    return spec, weights


def read_source(
    path: str | os.PathLike[str],
    arch: str | None = None,
    variant: str = "torchvision",
    num_classes: int | None = None,
    in_channels: int | None = None,
) -> Read:
    """(spec, canonical weights, recorded) of a checkpoint file or library folder, checked against each other;
    `recorded` is what a library's folder holds beside the weights (class names, mean, std, size), else {}.

    The architecture comes from `arch`/`variant` when given, else from the source: a library's folder or file
    records it, a `.keras` file holds its spec, and so does a `.safetensors` file this project wrote; other files
    are matched against every preset by keys and shapes, and where variants share every shape (torchvision and
    v1) the first listed is taken unless `variant` names another. `num_classes` and `in_channels` default to what
    the file holds; given, they must agree with it.

    Args:
        path: a checkpoint of one of `parity.io.formats.FORMATS`, or a library's folder or file.
        arch: a preset name, or None to read it from the source.
        variant: the preset variant (with `arch`).
        num_classes, in_channels: expected outputs and input channels, or None.
    """
    path = Path(path)
    library = library_of(path)
    recorded: dict[str, Any] = {}
    if library is not None and arch is None:
        spec, weights, recorded = library.read(path)
    elif library is not None and path.is_dir():
        raise ValueError(f"{path}: a {library.NAME} folder holds its architecture in config.json; drop --arch")
    elif path.is_dir():
        raise folder_refusal(path)
    else:
        spec, weights, from_file = _file_with_spec(path, format_of(path), arch, variant, num_classes, in_channels)
        if not from_file:
            recorded["assumed"] = assumptions(spec)
    _check_held(path, weights, num_classes, in_channels)
    try:
        match_shapes(spec.canonical_shapes(), weights)
    except WeightMismatchError as exc:
        raise exc.with_headline(_which_network(weights, spec, path)) from None
    return spec, weights, recorded


def _file_with_spec(
    path: Path, fmt: Format, arch: str | None, variant: str, num_classes: int | None, in_channels: int | None
) -> tuple[ResNetSpec, dict[str, np.ndarray], bool]:
    """(a checkpoint file's spec: recorded, inferred, or the preset given; its weights; whether the file held the
    spec)."""
    given = None
    if fmt.needs_spec:
        if arch is None:
            raise ValueError(
                f"{path}: a .weights.h5 file holds no architecture; pass --arch (and --variant, "
                "--num-classes, --in-channels if they differ from the defaults)"
            )
        given = make_spec(
            arch, variant, num_classes=1000 if num_classes is None else num_classes, in_channels=in_channels or 3
        )
    held, weights = read_file(path, given)
    if given is not None:
        return given, weights, False
    if held is not None and (arch is None or fmt.name == "keras"):  # a .keras file is its model: its spec decides
        return held, weights, True
    if arch is None:
        try:
            found = infer_spec(weights)
        except ValueError as exc:
            if "cannot tell the architecture" not in str(exc):
                raise
            raise ValueError(
                f"{path}: {exc}; a network named otherwise is read in structural order with --arch "
                "(and --variant, --num-classes)"
            ) from None
        # Variants with the same shapes (torchvision / v1, keras_applications / conv_bias) look alike in a file:
        # inference takes the first, a given --variant overrides it.
        if variant == "torchvision" or found.variant == "inferred" or found.preset is None:
            return found, weights, False
        arch = found.preset
    spec = make_spec(arch, variant, **held_sizes(weights))
    if f"{spec.stem_plan().conv.name}.weight" not in weights:
        # Not torchvision's names (no stem conv): a tutorial's or a library's own; its layers line up in structural order.
        try:
            weights, _ = weights_by_structure(weights, spec)
        except ValueError as exc:
            raise ValueError(f"{path}: not named as torchvision, and {exc}") from None
    return spec, weights, False


_HELD_BY = {"num_classes": ("fc.weight",), "in_channels": ("conv1.weight", "conv1.0.weight")}


def _check_held(path: Path, weights: Mapping[str, Any], num_classes: int | None, in_channels: int | None) -> None:
    """--num-classes and --in-channels, where given, agree with what the weights hold."""
    held = held_sizes(weights)
    for flag, given, key in (
        ("--num-classes", num_classes, "num_classes"),
        ("--in-channels", in_channels, "in_channels"),
    ):
        if given is not None and key in held and given != held[key]:
            source = next((k for k in _HELD_BY[key] if k in weights), None)
            why = f"{source} is {tuple(np.shape(weights[source]))}" if source else "it has no fc: a headless network"
            raise ValueError(f"{flag} {given}, but {path} holds {held[key]} ({why})")


def _describe(spec: ResNetSpec) -> str:
    return f"{spec.name} ({layout_name(spec)}, {spec.num_classes} classes, {spec.in_channels} channels)"


def _which_network(weights: Mapping[str, Any], spec: ResNetSpec, path: Any) -> str:
    """'this file is resnet18 (...); the model is resnet50 (...)', or the closest preset's name."""
    try:
        found = infer_spec(weights)
    except ValueError:
        return f"{path} does not hold {_describe(spec)}"
    return f"{path} holds {_describe(found)}; the model is {_describe(spec)}"


# -- writing ---------------------------------------------------------------------------------------


def write_checkpoint(
    weights: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
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
        metadata: formats that carry metadata only (`.safetensors`): more JSON-able entries for its header
            (see `parity.io.formats.read_metadata`); the full spec is always stored there.
    """
    fmt = format_of(path)
    if fmt.write is None:
        raise ValueError(f"{path}: {fmt.refusal}")
    if metadata and not fmt.metadata:
        raise ValueError(f"{path}: only .safetensors files carry metadata")
    arrays = match_shapes(spec.canonical_shapes(), weights)
    write = fmt.write
    return atomic_write(path, lambda tmp: write(arrays, tmp, spec, metadata), force=force)


def write_for_library(
    weights: Mapping[str, Any],
    spec: ResNetSpec,
    dst: str | os.PathLike[str],
    library: str,
    force: bool = False,
    recorded: Mapping[str, Any] | None = None,
) -> Path:
    """Write canonical weights in a library's own layout, loadable with its own call (see `parity.io.libraries`);
    a spec the library cannot hold is refused naming the field, and nothing is written."""
    target = library_named(library)
    arrays = match_shapes(spec.canonical_shapes(), weights)
    return target.write(spec, arrays, Path(dst), recorded, force)


# -- models and conversion -------------------------------------------------------------------------


def load_checkpoint(model: Any, path: str | os.PathLike[str], strict: bool = True) -> None:
    """Load a checkpoint file of any format into a model of either backend.

    The file is read and checked in full before the model is touched; on any error the model is unchanged.

    Args:
        model: a resnet_torch or resnet_keras model.
        path: a checkpoint of any format (a torchvision `.pth` works as is) or a library's folder.
        strict: as in `parity.io.weights.set_weights`.
    """
    spec = spec_of(model)
    weights = read_checkpoint(path, spec)
    try:
        set_weights(model, weights, strict=strict)
    except WeightMismatchError as exc:
        raise exc.with_headline(_which_network(weights, spec, path)) from None


def load_model(
    path: str | os.PathLike[str],
    backend: str,
    arch: str | None = None,
    variant: str = "torchvision",
    num_classes: int | None = None,
    in_channels: int | None = None,
) -> Any:
    """A new model of `backend` ("torch" or "keras") holding a checkpoint's weights, ready for inference: a torch
    module comes in eval mode (BatchNorm on its running statistics), as transformers' `from_pretrained` and
    `timm.create_model(pretrained=True)` return theirs; call `.train()` to train it.

    The architecture comes from the source (see `read_with_spec`) unless `arch` is given. A `.keras`
    file loads with safe_mode, and needs no prior `import resnet_keras`.
    """
    spec, weights = read_with_spec(path, arch, variant, num_classes, in_channels)
    model = adapter_named(backend).build(spec)
    set_weights(model, weights)
    return model


def save_checkpoint(model: Any, path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write a model's canonical weights to a file of any format (atomically)."""
    return write_checkpoint(get_weights(model), path, spec_of(model), force=force)


def refuse_same_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """A conversion never writes over its own source (it would read and replace the file it converts)."""
    same = Path(src).resolve() == Path(dst).resolve()
    if same or (Path(src).exists() and Path(dst).exists() and os.path.samefile(src, dst)):
        raise ValueError(f"{dst} is the source file itself; write the conversion to another path")


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    to: str | None = None,
    arch: str | None = None,
    variant: str = "torchvision",
    num_classes: int | None = None,
    in_channels: int | None = None,
    force: bool = False,
) -> tuple[Path, ResNetSpec, dict[str, Any]]:
    """Convert a checkpoint between any two formats, or into a library's own layout; (written path, spec, what
    the source recorded beside its weights and the library's layout kept: labels, preprocessing, head, input).

    Everything that can be refused is refused before the source is read: an unknown format, the source itself
    as target, an existing target without `force`.

    Args:
        src: an existing checkpoint file or library folder.
        dst: the target: a file whose extension picks the format, or (with `to`) the library's folder or file.
        to: a library of `parity.io.libraries.LIBRARIES` to write for (None: this project's formats).
        arch, variant, num_classes, in_channels: as `read_with_spec` (None: read from the source).
        force: replace an existing target.
    """
    if to is None:
        format_of(dst)
    else:
        library_named(to).check_target(Path(dst))
    refuse_same_file(src, dst)
    if to is None or not library_named(to).FOLDER:
        check_target(dst, force)
    elif Path(dst).exists() and not force:
        raise FileExistsError(f"{dst} exists; pass --force to overwrite it")
    spec, weights, recorded = read_source(src, arch, variant, num_classes, in_channels)
    if to is None:
        return write_checkpoint(weights, dst, spec, force=force), spec, {}
    return write_for_library(weights, spec, dst, to, force, recorded), spec, recorded
