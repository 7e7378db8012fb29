"""Building, weights and running of resnet_torch models (mirrors `parity.backends.keras.run`).

Arrays cross this boundary as numpy, NCHW, in canonical (torchvision) keys and PyTorch layouts.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

import resnet_torch
from parity.backends.interface import Adapter
from parity.core.errors import Unavailable
from parity.spec import NUM_BATCHES_TRACKED, ResNetSpec

LOW = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _tensor(model: Any, x: np.ndarray, device: str) -> torch.Tensor:
    dtype = next(model.parameters()).dtype
    kind = torch.device(device).type
    if torch.is_autocast_enabled(kind):
        # Under autocast a unit's input arrives in the low dtype from the unit before it; the identity of a block
        # (added to its branch) would otherwise stay float32 and the unit compute better than in the network.
        dtype = torch.get_autocast_dtype(kind)
    return torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=dtype)


def _numpy(value: torch.Tensor) -> np.ndarray:
    value = value.detach().cpu()
    return (value.float() if value.dtype in (torch.bfloat16, torch.float16) else value).numpy()


class TorchRun(Adapter):
    """Build, place, weigh and run a resnet_torch model."""

    LOW_PRECISION = {name: f"torch.autocast({name})" for name in LOW}

    # -- building and placing

    def build(self, spec: ResNetSpec, dtype: str = "float32") -> Any:
        """A resnet_torch model of `spec` (torchvision's init), its parameters in `dtype`, in eval mode: ready for
        inference as `from_pretrained` returns a model (training steps switch it to train mode themselves)."""
        return resnet_torch.ResNet(spec).to(getattr(torch, dtype)).eval()

    @contextlib.contextmanager
    def dtype_scope(self, dtype: str) -> Iterator[None]:
        """Nothing to switch: a torch model computes in the dtype of its parameters (see `build`)."""
        yield

    def dtype_of(self, model: Any) -> str:
        """The dtype the model computes in ('float32', 'float64')."""
        return str(next(model.parameters()).dtype).replace("torch.", "")

    def to_device(self, model: Any, device: str) -> Any:
        """The model on `device` ("cpu", "cuda", "cuda:1")."""
        return model.to(device)

    # -- weights

    def tensors(self, model: Any) -> dict[str, Any]:
        """Canonical key -> the model's own tensor (parameters and BN running statistics)."""
        return {k: v for k, v in model.state_dict(keep_vars=True).items() if not k.endswith(NUM_BATCHES_TRACKED)}

    def get_weights(self, model: Any) -> dict[str, np.ndarray]:
        """Canonical weights as numpy copies (PyTorch layout already)."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.tensors(model).items()}

    def get_shapes(self, model: Any) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in self.tensors(model).items()}

    def assign(self, model: Any, arrays: Mapping[str, np.ndarray]) -> None:
        """Assign validated canonical arrays (see `parity.io.weights.set_weights`)."""
        targets = self.tensors(model)
        with torch.no_grad():
            for key, value in arrays.items():
                target = targets[key]
                target.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(target.dtype))

    def count_params(self, model: Any) -> tuple[int, int]:
        """(trainable parameters, BN running-statistic elements) of a model or any of its modules."""
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        running = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
        return trainable, running

    def framework_counts(self, model: Any) -> dict[str, int]:
        """PyTorch's own totals: `parameters()` and `buffers()` elements (num_batches_tracked included)."""
        return {
            "torch_parameters": sum(p.numel() for p in model.parameters()),
            "torch_buffers": sum(b.numel() for b in model.buffers()),
        }

    # -- running

    def run_stages(
        self, model: Any, x: np.ndarray, device: str = "cpu", training: bool = False
    ) -> dict[str, np.ndarray]:
        """Stage outputs (stem, layer1.., logits) as NCHW numpy arrays, in inference mode unless `training`
        (BatchNorm on batch statistics; the running statistics are updated, as a training step would)."""
        model.train(training)
        model.to(device)
        try:
            with torch.no_grad():
                outputs = model.forward_stages(_tensor(model, x, device))
        finally:
            model.eval()
        return {k: _numpy(v) for k, v in outputs.items()}

    def run_unit(self, model: Any, name: str, x: np.ndarray, device: str = "cpu") -> np.ndarray:
        """One piece of the network alone, in inference mode, on a given NCHW input.

        Args:
            model: a resnet_torch model.
            name: "stem", "head", a block ("layer3.4") or a layer by canonical name ("layer3.4.bn2",
                "layer3.4.downsample.0", "layer3.4.se.fc1", "conv1", "maxpool", "avgpool", "fc").
            x: the unit's input (NCHW; (N, features) for "fc"; (N, 1, C) for a 1-D conv).
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
        return _numpy(out)

    @contextlib.contextmanager
    def float64(self, model: Any) -> Iterator[Any]:
        """A float64 copy of the model (same weights, every op in float64); the model is untouched."""
        yield copy.deepcopy(model).double()

    @contextlib.contextmanager
    def low_precision(self, model: Any, precision: str) -> Iterator[Any]:
        """The model under `torch.autocast` in `precision` for the block: convolutions and linear layers in bf16 or
        fp16 over the fp32 parameters, the ops autocast does not list (BatchNorm, ReLU, the addition, pools) in the
        dtype of their input; the model itself is unchanged."""
        kind = next(model.parameters()).device.type
        with torch.autocast(kind, dtype=LOW[precision]):
            yield model

    def calibrate(self, model: Any, batches: list[np.ndarray]) -> None:
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

    def cuda_available(self) -> bool:
        """True when torch sees a CUDA device (the only GPU check CI needs: it has none)."""
        return torch.cuda.is_available()

    @contextlib.contextmanager
    def tf32(self, allow: bool) -> Iterator[None]:
        """TF32 for CUDA matmuls and convolutions on (allow) or off for the block; restored after."""
        old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old

    def threads(self) -> int:
        """Threads torch computes with in this process."""
        return torch.get_num_threads()

    def set_threads(self, count: int) -> None:
        """Compute with `count` threads (intra-op); inter-op threads can be set only before the first op."""
        torch.set_num_threads(count)
        try:
            torch.set_num_interop_threads(count)
        except RuntimeError:  # already started: keeps its own
            pass

    def seed(self, value: int) -> None:
        """Seed torch's generator (a fresh model's default init draws from it)."""
        torch.manual_seed(value)

    def device_name(self, device: str) -> str:
        """The device as a person reads it ('cpu', 'cuda: NVIDIA H100 80GB HBM3')."""
        if device == "cuda" and torch.cuda.is_available():
            return f"cuda: {torch.cuda.get_device_name(0)}"
        return device

    # -- timing

    INFERENCE_VARIANTS = ("eager", "channels-last", "compile")

    def inference_step(self, model: Any, x: np.ndarray, variant: str = "eager") -> Callable[[], Any]:
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
                first = str(exc).splitlines()[0][:120] if str(exc) else ""
                raise Unavailable(f"torch.compile failed: {type(exc).__name__}: {first}") from None

        def step() -> Any:
            with torch.no_grad():
                return model(inp)

        return step

    def matmul_step(self, size: int) -> Callable[[], Any]:
        """A no-argument callable multiplying two fp32 size x size matrices (torch's BLAS, default threads)."""
        a, b, out = torch.randn(size, size), torch.randn(size, size), torch.empty(size, size)
        return lambda: torch.mm(a, b, out=out)

    # -- lessons

    def flatten(self, x: np.ndarray) -> np.ndarray:
        """torch.flatten(x, 1) of an NCHW map: features in (C, H, W) order."""
        return torch.flatten(torch.from_numpy(np.ascontiguousarray(x)), 1).numpy()
