"""`Runtime` and `Session`: what a deployment runtime owes the checks, written once.

A runtime takes some of three sources — a torch model, a Keras model (this project's, or one unit of one:
`Adapter.unit_model`) or an ONNX file — and writes its own file from it into a folder; it loads that file asking
for a precision and says the precision it really computes in, read off its own settings. Images cross this
boundary as numpy float32 in the source's layout (NCHW for torch and the ONNX files of torch models, NHWC for
Keras' exports); the checks convert. Nothing of a runtime's package is imported here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
"""Canonical names of the precisions a runtime computes in."""


@dataclass
class Session:
    """A loaded runtime file, ready to run.

    Args:
        run: NCHW or NHWC float32 batch (the layout it was exported in) -> the output.
        precision: what the runtime computes in, as its own settings say ('fp32', 'bf16', 'fp16').
        evidence: where that was read ("INFERENCE_PRECISION_HINT=f32, the compiled model's property").
        metadata: the file's own key/value metadata, where the format has any (ONNX).
    """

    run: Any
    precision: str
    evidence: str
    metadata: dict[str, str] = field(default_factory=dict)


class Runtime(ABC):
    """One deployment runtime (`parity.backends.runtimes.RUNTIMES` registers each once)."""

    NAME: str
    """Its name in `--runtime`."""
    LABEL: str
    """How a route through this project's ONNX file names it ('torch.onnx -> ONNX -> OpenVINO')."""
    DIST: str
    """The distribution `version` reads ('ai-edge-litert')."""
    ROUTES: dict[str, str]
    """Source -> how a table names the way from it ('torch.export -> OpenVINO')."""

    PRECISIONS: tuple[str, ...] = ("fp32",)
    """What `load` can be asked for (an fp32 file computes in fp32; lower ones are files of their own)."""

    def check_precision(self, precision: str | None) -> None:
        """Refuse a precision this runtime cannot be asked for, in one line naming what it can."""
        if precision is not None and precision not in self.PRECISIONS:
            raise ValueError(f"{self.NAME} cannot be asked for {precision} here; it takes {', '.join(self.PRECISIONS)}")

    @property
    def TAKES(self) -> tuple[str, ...]:  # noqa: N802 - read like the class constants beside it
        """Sources it exports from (the registry's `Entry.takes`)."""
        from parity.backends.runtimes import RUNTIMES

        return RUNTIMES[self.NAME].takes

    def default_precision(self) -> str:
        """What it computes in when not asked (`load(path, None)`): fp32 unless its module says otherwise."""
        return "fp32"

    def refusal(self, source: str) -> str | None:
        """Why this runtime cannot take `source` ('torch', 'keras' or 'onnx') in this process, or None."""
        return None if source in self.TAKES else f"{self.NAME} takes {' or '.join(self.TAKES)} models, not {source}"

    def version(self) -> str:
        """The installed version of its distribution ('' when absent)."""
        from importlib.metadata import PackageNotFoundError, version

        for dist in (self.DIST, self.DIST.replace("-cpu", "")):
            try:
                return version(dist)
            except PackageNotFoundError:
                continue
        return ""

    @abstractmethod
    def export(self, source: str, model: Any, folder: Path, shape: tuple[int, ...], dynamic: bool) -> Path:
        """Write this runtime's file for `model` into the empty `folder`; returns what `load` takes.

        Args:
            source: 'torch', 'keras' or 'onnx'.
            model: the torch or Keras model (or unit), or the ONNX file's path.
            folder: an empty folder of its own (the checks remove it; nothing outside it is written).
            shape: the example input, in the source's layout.
            dynamic: leave batch (and height and width, where the network allows) open.
        """

    CONVERTS: tuple[str, ...] = ()
    """Precisions its converter writes from the source model itself (`export_lowered`: LiteRT's fp16 weights and
    int8 file)."""

    def export_lowered(
        self,
        source: str,
        model: Any,
        folder: Path,
        shape: tuple[int, ...],
        dynamic: bool,
        precision: str,
        calibration: list[np.ndarray],
    ) -> Path:
        """`export` writing `precision` (one of `CONVERTS`) with the converter's own options; `calibration`: batches
        of the model's input in the source's layout, for int8's ranges."""
        raise ValueError(f"{self.NAME} writes no {precision} file itself; it takes {', '.join(self.PRECISIONS)}")

    LOWERS: tuple[str, ...] = ()
    """Precisions that are a file of their own, written by `lower` from the fp32 file (onnxruntime's fp16 graph and
    int8 QDQ file); the others of `PRECISIONS` are asked for when loading."""

    def lower(self, path: Path, folder: Path, precision: str, calibration: list[np.ndarray]) -> Path:
        """The file of `precision` made from this runtime's fp32 file `path` (written into `folder`), where that
        precision is a file of its own (`LOWERS`); `path` itself where it is asked for at load.

        Args:
            calibration: inputs in the file's layout, one batch each, for int8's activation ranges.
        """
        self.check_precision(precision)
        return path

    @abstractmethod
    def load(self, path: Path, precision: str | None = "fp32") -> Session:
        """Load what `export` wrote, asking for `precision` (None: the runtime's own default)."""


def float32(x: np.ndarray) -> np.ndarray:
    """A contiguous float32 copy for a runtime's input."""
    return np.ascontiguousarray(x, dtype=np.float32)


def size_of(path: Path) -> int:
    """Bytes of a runtime's file, or of every file of its folder (a SavedModel), or of its side files (OpenVINO's
    .bin beside the .xml)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return sum(p.stat().st_size for p in path.parent.glob(path.stem + ".*") if p.is_file())
