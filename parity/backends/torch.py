"""The PyTorch side of every parity operation (mirrors `parity.backends.keras`, same names).

Arrays cross this boundary as numpy, NCHW, in canonical (torchvision) keys and PyTorch layouts. The
functions are the ones `parity.backends.protocol.Adapter` lists; nothing else in `parity` imports torch.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import resnet_torch
import resnet_torch.distributed
import resnet_torch.train as torch_train
from parity.core import threads as _threads
from parity.core.errors import CheckpointError, Unavailable
from parity.spec import NUM_BATCHES_TRACKED, ResNetSpec
from resnet_torch.train import make_optimizer  # the train command's optimizers, as they are

NAME = "torch"


# -- building and placing ------------------------------------------------------------------------------


def build(spec: ResNetSpec, dtype: str = "float32") -> Any:
    """A resnet_torch model of `spec` (torchvision's init), its parameters in `dtype`."""
    return resnet_torch.ResNet(spec).to(getattr(torch, dtype))


@contextlib.contextmanager
def dtype_scope(dtype: str) -> Iterator[None]:
    """Nothing to switch: a torch model computes in the dtype of its parameters (see `build`)."""
    yield


def dtype_of(model: Any) -> str:
    """The dtype the model computes in ('float32', 'float64')."""
    return str(next(model.parameters()).dtype).replace("torch.", "")


def to_device(model: Any, device: str) -> Any:
    """The model on `device` ("cpu", "cuda", "cuda:1")."""
    return model.to(device)


def data_parallel() -> Any:
    """The engine of data-parallel training: `resnet_torch.distributed` (torchrun, DDP)."""
    return resnet_torch.distributed


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
    """Assign validated canonical arrays (see `parity.io.weights.set_weights`)."""
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
    return {
        "torch_parameters": sum(p.numel() for p in model.parameters()),
        "torch_buffers": sum(b.numel() for b in model.buffers()),
    }


# -- running ---------------------------------------------------------------------------------------


def _tensor(model: Any, x: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=next(model.parameters()).dtype)


def run_stages(model: Any, x: np.ndarray, device: str = "cpu", training: bool = False) -> dict[str, np.ndarray]:
    """Stage outputs (stem, layer1.., logits) as NCHW numpy arrays, in inference mode unless `training`
    (BatchNorm on batch statistics; the running statistics are updated, as a training step would)."""
    model.train(training)
    model.to(device)
    try:
        with torch.no_grad():
            outputs = model.forward_stages(_tensor(model, x, device))
    finally:
        model.eval()
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


def cuda_available() -> bool:
    """True when torch sees a CUDA device (the only GPU check CI needs: it has none)."""
    return torch.cuda.is_available()


@contextlib.contextmanager
def tf32(allow: bool) -> Iterator[None]:
    """TF32 for CUDA matmuls and convolutions on (allow) or off for the block; restored after."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def threads() -> int:
    """Threads torch computes with in this process."""
    return torch.get_num_threads()


def set_threads(count: int) -> None:
    """Compute with `count` threads (intra-op); inter-op threads can be set only before the first op."""
    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(count)
    except RuntimeError:  # already started: keeps its own
        pass


def seed(value: int) -> None:
    """Seed torch's generator (a fresh model's default init draws from it)."""
    torch.manual_seed(value)


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


def onnx_refusal(spec: ResNetSpec | None = None) -> str | None:
    """Why this process cannot export a torch model (of `spec`) to ONNX: never (None)."""
    return None


def export_onnx(
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


# -- training --------------------------------------------------------------------------------------


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


def train_step(model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """One optimizer step on an NCHW batch (cast to the model's dtype); (mean cross-entropy, correct)."""
    return torch_train.train_step(model, optimizer, images.astype(dtype_of(model), copy=False), labels)


def predict_logits(model: Any, images: np.ndarray) -> np.ndarray:
    """Logits of one NCHW batch in inference mode."""
    return torch_train.predict_logits(model, images.astype(dtype_of(model), copy=False))


def train_step_with_gradients(
    model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """`train_step` that also returns every gradient before the update ('{canonical key}' -> numpy)."""
    names = {id(p): k for k, p in model.named_parameters()}
    grads: dict[str, np.ndarray] = {}

    def keep(opt: Any, args: Any, kwargs: Any) -> None:
        for p in model.parameters():
            grads[names[id(p)]] = p.grad.detach().cpu().numpy().copy()

    hook = optimizer.register_step_pre_hook(keep)
    try:
        loss, _ = train_step(model, optimizer, images, labels)
    finally:
        hook.remove()
    return loss, grads


def stock_optimizer(
    model: Any, name: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eps: float | None = None
) -> Any:
    """torch's own optimizers are the reference: the same as `make_optimizer`."""
    return make_optimizer(model, name, lr, momentum, weight_decay, eps=1e-8 if eps is None else eps)


def accumulated_step(model: Any, optimizer: Any, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """One SGD step on the mean of the parts' gradients, BatchNorm per part, part 0's running statistics
    kept: what DDP without SyncBatchNorm computes over len(parts) processes, in one process."""
    device = next(model.parameters()).device
    buffers = [b for _, b in model.named_buffers()]
    model.train()
    optimizer.zero_grad()
    kept = None
    for index, (x, y) in enumerate(parts):
        logits = model(torch.from_numpy(x).to(device))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y).to(device)) / len(parts)
        loss.backward()
        if index == 0:
            kept = [b.detach().clone() for b in buffers]
    with torch.no_grad():
        for buffer, value in zip(buffers, kept):
            buffer.copy_(value)
    optimizer.step()


# -- checkpoint files ----------------------------------------------------------------------------------

NATIVE_FORMATS = ("torch",)
"""Checkpoint formats this framework reads and writes itself (see `parity.io.checkpoints.FORMATS`)."""


def read_native(fmt: str, path: Path, spec: ResNetSpec | None) -> tuple[None, dict[str, np.ndarray]]:
    """(None: a state dict holds no spec, its numpy arrays) of a `.pt`/`.pth` file; never unpickles
    anything but tensors."""
    # weights_only=True: tensors and plain containers only, never arbitrary pickled objects.
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the safe unpickler fails on foreign bytes in many ways (IndexError too)
        raise CheckpointError(f"{path} is not a PyTorch checkpoint of tensors: {_torch_reason(exc, path)}") from None
    state = _unwrap(state, path)
    weights = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        weights[key] = value.detach().cpu().numpy()
    return None, weights


def _torch_reason(exc: Exception, path: Path) -> str:
    """Why torch.load refused a file, without torch's advice to turn the safe loader off."""
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return (
            f"it holds a pickled {found[1]} object, which a file of plain tensors never does; "
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


def write_native(fmt: str, weights: Mapping[str, np.ndarray], tmp: Path, spec: ResNetSpec) -> None:
    """`torch.save` of a state dict of tensors (loads with `weights_only=True` and `strict=True`)."""
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}, tmp)


# -- timing ---------------------------------------------------------------------------------------------

INFERENCE_VARIANTS = ("eager", "channels-last", "compile")


def inference_step(model: Any, x: np.ndarray, variant: str = "eager") -> Any:
    """A no-argument callable running one inference batch (NCHW `x`) as `variant` runs it."""
    model = model.eval()
    inp = torch.from_numpy(np.ascontiguousarray(x))
    if variant == "channels-last":
        model = model.to(memory_format=torch.channels_last)
        inp = inp.contiguous(memory_format=torch.channels_last)
    if variant == "compile":
        try:
            model = torch.compile(model)
            with torch.no_grad():
                model(inp)  # compiles here, outside the timing
        except Exception as exc:  # inductor needs a C++ compiler; say what failed
            raise Unavailable(f"torch.compile failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from None

    def step():
        with torch.no_grad():
            return model(inp)

    return step


def matmul_step(size: int) -> Any:
    """A no-argument callable multiplying two fp32 size x size matrices (torch's BLAS, default threads)."""
    a, b, out = torch.randn(size, size), torch.randn(size, size), torch.empty(size, size)
    return lambda: torch.mm(a, b, out=out)


# -- lessons --------------------------------------------------------------------------------------------


def flatten(x: np.ndarray) -> np.ndarray:
    """torch.flatten(x, 1) of an NCHW map: features in (C, H, W) order."""
    return torch.flatten(torch.from_numpy(np.ascontiguousarray(x)), 1).numpy()


if _threads.configured() is not None:  # `--threads N`: applied as the framework starts
    set_threads(_threads.configured())
