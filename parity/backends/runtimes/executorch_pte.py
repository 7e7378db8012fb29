"""ExecuTorch: a torch model's `torch.export` program lowered to the XNNPACK backend (`.pte`), run by ExecuTorch's
own runtime (the one a phone links)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower
from executorch.runtime import Runtime as ETRuntime

from parity.backends import adapter
from parity.backends.runtimes.interface import Runtime, Session, float32


class ExecuTorch(Runtime):
    """ExecuTorch's runtime on an XNNPACK-lowered `.pte`."""

    NAME = "executorch"
    LABEL = "ExecuTorch (XNNPACK)"
    DIST = "executorch"
    ROUTES = {"torch": "torch.export -> ExecuTorch XNNPACK"}

    def export(self, source: str, model: Any, folder: Path, shape: tuple[int, ...], dynamic: bool) -> Path:
        target = folder / "model.pte"
        program = adapter(model).export_program(model, shape, dynamic)
        logging.getLogger("executorch").setLevel(logging.ERROR)
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
        target.write_bytes(lowered.buffer)
        return target

    def load(self, path: Path, precision: str | None = "fp32") -> Session:
        self.check_precision(precision)
        method = ETRuntime.get().load_program(str(path)).load_method("forward")

        def run(x: np.ndarray) -> np.ndarray:
            return method.execute([torch.from_numpy(float32(x))])[0].numpy().copy()

        return Session(run, "fp32", "an fp32 program lowered to XNNPACK, no quantizer applied")
