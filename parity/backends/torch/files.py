"""`.pt` / `.pth` state dicts, read without unpickling anything but tensors (mirrors `parity.backends.keras.files`)."""

from __future__ import annotations

import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from parity.backends.interface import Adapter
from parity.core.errors import CheckpointError
from parity.spec import ResNetSpec


class TorchFiles(Adapter):
    """The checkpoint format torch reads and writes itself."""

    NATIVE_FORMATS = ("torch",)

    def read_native(
        self, fmt: str, path: Path, spec: ResNetSpec | None
    ) -> tuple[ResNetSpec | None, dict[str, np.ndarray]]:
        """(None: a state dict holds no spec, its numpy arrays) of a `.pt`/`.pth` file; never unpickles
        anything but tensors."""
        # weights_only=True: tensors and plain containers only, never arbitrary pickled objects.
        try:
            with warnings.catch_warnings():  # torch warns about a pickle's protocol before it refuses the file
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # the safe unpickler fails on foreign bytes in many ways (IndexError too)
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint of tensors: {_torch_reason(exc, path)}"
            ) from None
        state = _unwrap(state, path)
        weights = {}
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
            weights[key] = value.detach().cpu().numpy()
        return None, weights

    def write_native(self, fmt: str, weights: Mapping[str, np.ndarray], tmp: Path, spec: ResNetSpec) -> None:
        """`torch.save` of a state dict of tensors (loads with `weights_only=True` and `strict=True`)."""
        torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}, tmp)


DATA_GLOBALS = ("collections.OrderedDict", "torch._utils.", "torch.", "numpy.", "_codecs.encode", "builtins.set")
"""Globals a pickle of tensors and plain containers may name; any other is code a pickle would call."""


def _torch_reason(exc: Exception, path: Path) -> str:
    """Why torch.load refused a file, without torch's advice to turn the safe loader off."""
    text = str(exc)
    # torch < 2.6 says "Unsupported global: GLOBAL x.y", torch 2.6+ "Trying to load unsupported GLOBAL x.y"
    found = re.search(r"[Uu]nsupported [Gg]lobal:? GLOBAL ([\w.]+)", text)
    name = found[1] if found else _code_global(path)
    if name and not name.startswith(DATA_GLOBALS):
        return (
            f"it holds code: a pickled call to {name}, which a file of tensors never holds; it was refused "
            "before it was unpickled, so nothing ran"
        )
    if name:
        return (
            f"it holds a pickled {name} object, which a file of plain tensors never does; "
            "it was not unpickled (only tensors and plain containers are read)"
        )
    if not zipfile.is_zipfile(path):
        return (
            "its bytes are neither a torch.save zip archive nor a pickle of plain tensors (corrupt, "
            "truncated, another format, or pickled objects); nothing in it was unpickled"
        )
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)\n", text)
    return f"torch.load cannot read this archive as tensors ({detail[1] if detail else type(exc).__name__})"


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
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _code_global(path: Path) -> str | None:
    """The first global a plain pickle names that is not data (`DATA_GLOBALS`), read with pickletools: its opcodes
    are parsed, nothing is unpickled. None when it names none or is no pickle."""
    import pickletools

    try:
        blob = path.read_bytes()
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                blob = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
        recent: list[str | None] = []  # what each opcode pushed, strings kept (enough for STACK_GLOBAL's two)
        memo: dict[int, str | None] = {}
        for opcode, arg, _ in pickletools.genops(blob):
            kind, name = opcode.name, None
            if kind in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "SHORT_BINSTRING", "BINSTRING"):
                recent.append(str(arg))
            elif kind == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif kind in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(str(arg))] = recent[-1] if recent else None
            elif kind in ("BINGET", "LONG_BINGET", "GET"):
                recent.append(memo.get(int(str(arg))))
            elif kind in ("GLOBAL", "INST"):
                name = str(arg).replace(" ", ".")
            elif kind == "STACK_GLOBAL" and len(recent) >= 2 and recent[-1] and recent[-2]:
                name = f"{recent[-2]}.{recent[-1]}"
            elif kind not in ("PROTO", "FRAME", "STOP"):
                recent.append(None)
            if name and not name.startswith(DATA_GLOBALS):
                return name
    except Exception:  # not a pickle at all (or a truncated one): the caller says so
        return None
    return None
