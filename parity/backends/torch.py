"""The PyTorch side of every parity operation (mirrors `parity.backends.keras`, same names).

Arrays cross this boundary as numpy, NCHW, in canonical (torchvision) keys and PyTorch layouts.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from parity.spec import NUM_BATCHES_TRACKED

NAME = "torch"


# -- weights ---------------------------------------------------------------------------------------


def tensors(model: Any) -> dict[str, torch.Tensor]:
    """Canonical key -> the model's own tensor (parameters and BN running statistics)."""
    return {k: v for k, v in model.state_dict(keep_vars=True).items() if not k.endswith(NUM_BATCHES_TRACKED)}


def get_weights(model: Any) -> dict[str, np.ndarray]:
    """Canonical weights as numpy copies (PyTorch layout already)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in tensors(model).items()}


def get_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in tensors(model).items()}


def assign(model: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Assign validated canonical arrays (see `parity.weights.set_weights`)."""
    targets = tensors(model)
    with torch.no_grad():
        for key, value in arrays.items():
            target = targets[key]
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(target.dtype))


def count_params(model: Any) -> tuple[int, int]:
    """(trainable parameters, BN running-statistic elements) of a model or any of its modules."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    running = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return trainable, running


def framework_counts(model: Any) -> dict[str, int]:
    """PyTorch's own totals: `parameters()` and `buffers()` elements (num_batches_tracked included)."""
    return {"torch_parameters": sum(p.numel() for p in model.parameters()),
            "torch_buffers": sum(b.numel() for b in model.buffers())}


# -- running ---------------------------------------------------------------------------------------


def _tensor(model: Any, x: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=next(model.parameters()).dtype)


def run_stages(model: Any, x: np.ndarray, device: str = "cpu") -> dict[str, np.ndarray]:
    """Inference-mode stage outputs (stem, layer1.., logits) as NCHW numpy arrays."""
    model.eval()
    model.to(device)
    with torch.no_grad():
        outputs = model.forward_stages(_tensor(model, x, device))
    return {k: v.detach().cpu().numpy() for k, v in outputs.items()}


def run_unit(model: Any, name: str, x: np.ndarray, device: str = "cpu") -> np.ndarray:
    """One piece of the network alone, in inference mode, on a given NCHW input.

    Args:
        model: a resnet_torch model.
        name: "stem", "head", a block ("layer3.4") or a layer by canonical name ("layer3.4.bn2",
            "layer3.4.downsample.0", "conv1", "maxpool", "avgpool", "fc").
        x: the unit's input (NCHW, or (N, features) for "fc").
        device: "cpu" or "cuda".
    """
    model.eval()
    model.to(device)
    if name == "stem":
        run = model.forward_stem
    elif name == "head":
        run = model.forward_head
    else:
        run = model.get_submodule(name)
    with torch.no_grad():
        out = run(_tensor(model, x, device))
    return out.detach().cpu().numpy()


@contextlib.contextmanager
def float64(model: Any) -> Iterator[Any]:
    """A float64 copy of the model (same weights, every op in float64); the model is untouched."""
    yield copy.deepcopy(model).double()


def calibrate(model: Any, batches: list[np.ndarray]) -> None:
    """Set every BN's running statistics to their average over `batches` (training-mode passes).

    Momentum None makes torch keep a cumulative average; the running variance is the unbiased one,
    as training leaves it. Weights are not changed; the model ends in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    try:
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None
        model.train()
        with torch.no_grad():
            for x in batches:
                model(_tensor(model, x, next(model.parameters()).device.type))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.eval()


def device_name(device: str) -> str:
    """The device as a person reads it ('cpu', 'cuda: NVIDIA H100 80GB HBM3')."""
    if device == "cuda" and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return device


# -- export ----------------------------------------------------------------------------------------


def min_input_size(spec: Any) -> int:
    """The smallest square input every layer of `spec` accepts (the exporter needs a lower bound)."""
    size = 1
    while True:
        try:
            spec.layer_table(size)
            return max(size, 2)
        except ValueError:
            size += 1


def export_onnx(model: Any, tmp: Path, nchw: bool, opset: int, height: int, width: int,
                input_name: str, output_name: str, batch_axis: str) -> None:
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


def build(spec: Any) -> Any:
    """A resnet_torch model of `spec` (torchvision's init)."""
    import resnet_torch

    return resnet_torch.ResNet(spec)


# -- training --------------------------------------------------------------------------------------

from resnet_torch.train import make_optimizer, predict_logits, train_step  # noqa: E402  (re-exported)


def optimizer_state(model: Any, optimizer: Any) -> dict[str, np.ndarray]:
    """The optimizer's per-parameter state as '{slot}.{canonical key}' -> numpy (torch's own slots:
    momentum_buffer, or exp_avg, exp_avg_sq and step)."""
    names = {id(p): k for k, p in model.named_parameters()}
    out = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for slot, value in optimizer.state.get(p, {}).items():
                if torch.is_tensor(value):
                    out[f"{slot}.{names[id(p)]}"] = value.detach().cpu().numpy().copy()
    return out


def load_optimizer_state(model: Any, optimizer: Any, state: Mapping[str, np.ndarray]) -> None:
    """Put back what `optimizer_state` returned (every key checked first; nothing changes on error)."""
    params = dict(model.named_parameters())
    unknown = [k for k in state if k.partition(".")[2] not in params]
    if unknown:
        raise KeyError(f"optimizer state for unknown parameters: {', '.join(unknown[:5])}")
    for key, value in state.items():
        slot, _, name = key.partition(".")
        p = params[name]
        # Adam keeps `step` on the CPU (unless capturable); moments live beside their parameter.
        device = "cpu" if slot == "step" else p.device
        value = np.reshape(value, ()) if slot == "step" else np.array(value)  # a file may hold () as (1,)
        optimizer.state[p][slot] = torch.from_numpy(value).to(device)
