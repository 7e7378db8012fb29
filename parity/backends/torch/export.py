"""ONNX export of resnet_torch models with torch.onnx's dynamo exporter (mirrors `parity.backends.keras.export`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from parity.backends.interface import Adapter
from parity.spec import ResNetSpec


def min_input_size(spec: ResNetSpec) -> int:
    """The smallest square input every layer of `spec` accepts (the exporter needs a lower bound)."""
    size = 1
    while True:
        try:
            spec.layer_table(size)
            return max(size, 2)
        except ValueError:
            size += 1


class TorchExport(Adapter):
    """torch.onnx.export (dynamo), batch, height and width dynamic."""

    def onnx_refusal(self, spec: ResNetSpec | None = None) -> str | None:
        """Why this process cannot export a torch model (of `spec`) to ONNX: never (None)."""
        return None

    def export_onnx(
        self,
        model: Any,
        tmp: Path,
        nchw: bool,
        opset: int,
        height: int,
        width: int,
        input_name: str,
        output_name: str,
        batch_axis: str,
    ) -> None:
        """torch.onnx.export (dynamo) to `tmp`; batch, height and width dynamic (batch only for 'same'
        padding); NCHW always."""
        # The exporter logs one warning per torchvision op it cannot find; we have no such ops.
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        spec = model.spec
        model = model.eval().cpu()
        example = torch.zeros(2, spec.in_channels, height, width)
        batch = torch.export.Dim(batch_axis, min=1, max=65536)
        dims = {0: batch}
        if spec.padding != "same":
            # Height and width stay symbolic like the batch, so the file runs at any size the network takes.
            # TF-style 'same' pads depend on each size's parity, which the exporter fixes at the example
            # size (measured: 0.33 relative error at 97x131 from a 64x64 export); those graphs stay static.
            smallest = min_input_size(spec)
            dims[2] = torch.export.Dim("height", min=smallest, max=16384)
            dims[3] = torch.export.Dim("width", min=smallest, max=16384)
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            dynamo=True,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes={"x": dims},
            opset_version=opset,
            verbose=False,
        )
