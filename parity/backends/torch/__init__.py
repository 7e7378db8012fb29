"""The PyTorch adapter: `TorchAdapter`, one class over five concerns (mirrors `parity.backends.keras`).

- `run`: building, weights, running, threads and timing;
- `files`: `.pt` / `.pth` state dicts;
- `export`: ONNX through torch.onnx;
- `training`: optimizers, steps, their state, the data-parallel engine;
- `live`: any torch module read and run as it is (`parity.io.live`).

Nothing else in `parity` imports torch; `parity.backends.adapter_named("torch")` gives the instance.
"""

from __future__ import annotations

from parity.backends.torch.export import TorchExport
from parity.backends.torch.files import TorchFiles
from parity.backends.torch.live import TorchLive
from parity.backends.torch.run import TorchRun
from parity.backends.torch.training import TorchTraining


class TorchAdapter(TorchRun, TorchFiles, TorchExport, TorchTraining, TorchLive):
    """`parity.backends.interface.Adapter` for resnet_torch models."""

    NAME = "torch"


__all__ = ["TorchAdapter"]
