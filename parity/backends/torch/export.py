"""Export of resnet_torch models (mirrors `parity.backends.keras.export`): ONNX with torch.onnx's dynamo exporter,
`torch.export` programs for the runtimes that compile them, and one unit alone."""

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


def dynamic_dims(spec: ResNetSpec, batch_axis: str = "batch") -> dict[int, Any]:
    """torch.export's dynamic axes of an NCHW input: the batch, and height and width unless 'same' padding."""
    dims = {0: torch.export.Dim(batch_axis, min=1, max=65536)}
    if spec.padding != "same":
        # Height and width stay symbolic like the batch, so the file runs at any size the network takes.
        # TF-style 'same' pads depend on each size's parity, which the exporter fixes at the example
        # size (measured: 0.33 relative error at 97x131 from a 64x64 export); those graphs stay static.
        smallest = min_input_size(spec)
        dims[2] = torch.export.Dim("height", min=smallest, max=16384)
        dims[3] = torch.export.Dim("width", min=smallest, max=16384)
    return dims


class Unit(torch.nn.Module):
    """One unit of a resnet_torch model alone (its stem, a block or its head), sharing the model's weights.

    Args:
        model: the resnet_torch model.
        name: 'stem', 'head' or a block ('layer2.0').
    """

    def __init__(self, model: Any, name: str):
        super().__init__()
        self.model = model
        self.name = name
        self.block: Any = None if name in ("stem", "head") else model.get_submodule(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == "stem":
            return self.model.forward_stem(x)
        if self.name == "head":
            return self.model.forward_head(x)
        return self.block(x)


class TorchExport(Adapter):
    """torch.onnx.export (dynamo), batch, height and width dynamic; torch.export programs; units alone."""

    LAYOUT = "NCHW"

    def unit_model(self, model: Any, unit: str) -> Any:
        """`Unit`: one unit of `model` alone, in eval mode."""
        return Unit(model.eval(), unit).eval()

    def export_program(self, model: Any, shape: tuple[int, ...], dynamic: bool) -> Any:
        """`torch.export.export` of `model` (or a `Unit`) at `shape`, NCHW; dynamic axes as the ONNX export's."""
        model = model.eval().cpu()
        spec = model.model.spec if isinstance(model, Unit) else model.spec
        dims = None
        if dynamic and not isinstance(model, Unit):
            # AUTO: the exporter finds the range each axis may take (a 2x2 map where a size-1 one would broadcast
            # differently bounds height and width), rather than failing on the range `dynamic_dims` asserts.
            dims = {axis: torch.export.Dim.AUTO for axis in dynamic_dims(spec)}
        with torch.no_grad():
            return torch.export.export(
                model, (torch.zeros(shape),), dynamic_shapes=None if dims is None else {"x": dims}
            )

    def onnx_refusal(self, spec: ResNetSpec | None = None) -> str | None:
        """Why this process cannot export a torch model (of `spec`) to ONNX: never (None)."""
        return None

    def export_onnx(
        self,
        model: Any,
        tmp: Path,
        nchw: bool,
        opset: int,
        shape: tuple[int, ...],
        dynamic: bool,
        input_name: str,
        output_name: str,
        batch_axis: str,
    ) -> None:
        """torch.onnx.export (dynamo) to `tmp`, NCHW always; with `dynamic`, batch, height and width open (batch only
        for 'same' padding)."""
        # The exporter logs one warning per torchvision op it cannot find; we have no such ops.
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        model = model.eval().cpu()
        dims = dynamic_dims(model.spec, batch_axis) if dynamic else None
        torch.onnx.export(
            model,
            (torch.zeros(shape),),
            str(tmp),
            dynamo=True,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes=None if dims is None else {"x": dims},
            opset_version=opset,
            verbose=False,
        )
