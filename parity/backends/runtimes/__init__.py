"""The deployment runtimes: one `Runtime` per module behind one interface (`parity.backends.runtimes.interface`),
registered here once with what can be known without importing them (their packages, extra, sources). A runtime's
own package (onnxruntime, openvino, ai_edge_litert, executorch) is imported only in its module, and only when the
runtime is first asked for (an import-linter contract); a runtime that is not installed is said in one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from parity.core.errors import Unavailable

if TYPE_CHECKING:
    from parity.backends.runtimes.interface import Runtime


@dataclass(frozen=True)
class Entry:
    """A runtime as the registry knows it before importing it.

    Args:
        target: its class, 'module:Class'.
        packages: import names that must be installed.
        extra: the pip extra that installs them.
        takes: sources it exports from: 'torch', 'keras', 'onnx' (the checks make the ONNX file of a model).
        programs: executables it needs, any one of them (AOTInductor: a C++ compiler).
    """

    target: str
    packages: tuple[str, ...]
    extra: str
    takes: tuple[str, ...]
    programs: tuple[str, ...] = ()


RUNTIMES = {
    "onnxruntime": Entry("parity.backends.runtimes.ort:OnnxRuntime", ("onnxruntime",), "onnx", ("onnx",)),
    "openvino": Entry(
        "parity.backends.runtimes.openvino_ir:OpenVINO", ("openvino",), "openvino", ("torch", "keras", "onnx")
    ),
    "litert": Entry("parity.backends.runtimes.litert:LiteRT", ("ai_edge_litert",), "litert", ("keras", "torch")),
    "executorch": Entry(
        "parity.backends.runtimes.executorch_pte:ExecuTorch", ("executorch",), "executorch", ("torch",)
    ),
    "aoti": Entry(
        "parity.backends.runtimes.aoti:AOTInductor", ("torch",), "torch", ("torch",), ("c++", "g++", "clang++")
    ),
    "saved_model": Entry("parity.backends.runtimes.saved_model:SavedModel", ("tensorflow",), "keras", ("keras",)),
}
"""Runtime name -> its `Entry`; the order of every table."""

RUNTIME_NAMES = tuple(RUNTIMES)

_MADE: dict[str, Runtime] = {}


def missing(name: str) -> str | None:
    """One line naming what to install for runtime `name`, or None when it can run here (nothing is imported)."""
    entry = _entry(name)
    absent = [package for package in entry.packages if importlib.util.find_spec(package) is None]
    if absent:
        return (
            f"{name}: {', '.join(absent)} is not installed; pip install 'resnet-parity[{entry.extra}]' "
            "(or [runtimes] for every runtime)"
        )
    if entry.programs and not any(shutil.which(program) for program in entry.programs):
        return (
            f"{name}: needs {' or '.join(entry.programs)} on PATH, and this machine has none (install g++ or clang++)"
        )
    return None


def runtime_named(name: str) -> Runtime:
    """The runtime of that name, made on first use (its module and package imported then); `Unavailable` with the
    `missing` line when it cannot run here."""
    entry = _entry(name)
    if name not in _MADE:
        line = missing(name)
        if line:
            raise Unavailable(line)
        from parity.core.logs import quiet_imports

        module, _, cls = entry.target.partition(":")
        with quiet_imports():  # what the runtime's native code writes to stderr as it loads (ExecuTorch's cpuinfo)
            _MADE[name] = getattr(importlib.import_module(module), cls)()
    return _MADE[name]


def _entry(name: str) -> Entry:
    if name not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIME_NAMES)}, got {name!r}")
    return RUNTIMES[name]


def parse_runtimes(text: str) -> list[str]:
    """'all' or a comma list of runtime names -> the names, in the registry's order; ValueError names a wrong one."""
    if text.strip() == "all":
        return list(RUNTIME_NAMES)
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if name not in RUNTIMES:
            raise ValueError(f"--runtime {name}: no such runtime; choose from all, {', '.join(RUNTIME_NAMES)}")
    if not names:
        raise ValueError(f"--runtime: give all or a comma list of {', '.join(RUNTIME_NAMES)}")
    return [name for name in RUNTIME_NAMES if name in names]
