"""torch.export + AOTInductor: a torch model compiled ahead of time to a `.pt2` package (a shared library and its
weights; needs a C++ compiler), loaded by `torch._inductor.aoti_load_package` as a C++ deployment would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from parity.backends import adapter
from parity.backends.runtimes.interface import Runtime, Session, float32


class AOTInductor(Runtime):
    """An AOTInductor package, run through its loader."""

    NAME = "aoti"
    LABEL = "AOTInductor"
    DIST = "torch"
    ROUTES = {"torch": "torch.export -> AOTInductor"}

    def export(self, source: str, model: Any, folder: Path, shape: tuple[int, ...], dynamic: bool) -> Path:
        target = folder / "model.pt2"
        program = adapter(model).export_program(model, shape, dynamic)
        torch._inductor.aoti_compile_and_package(program, package_path=str(target))
        return target

    def load(self, path: Path, precision: str | None = "fp32") -> Session:
        self.check_precision(precision)
        runner = torch._inductor.aoti_load_package(str(path))

        def run(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return runner(torch.from_numpy(float32(x))).numpy().copy()

        # torch's oneDNN convolutions may be switched to bf16 or tf32 for fp32 tensors; that switch is the evidence.
        conv = getattr(getattr(torch.backends.mkldnn, "conv", None), "fp32_precision", "ieee")
        found = "fp32" if conv in ("ieee", "none") else conv
        return Session(run, found, f"torch.backends.mkldnn.conv.fp32_precision={conv}")
