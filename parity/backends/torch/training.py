"""Training steps, optimizers and their state for resnet_torch models (mirrors `parity.backends.keras.training`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

import resnet_torch.distributed
import resnet_torch.train as torch_train
from parity.backends.interface import Adapter, DataParallel


class TorchTraining(Adapter):
    """torch's optimizers are the reference: `make_optimizer` is `resnet_torch.train.make_optimizer` as it is."""

    def data_parallel(self) -> DataParallel:
        """The engine of data-parallel training: `resnet_torch.distributed` (torchrun, DDP)."""
        return resnet_torch.distributed  # a module with the engine's functions

    def make_optimizer(
        self,
        model: Any,
        name: str,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> Any:
        """The train command's optimizers, as they are (`resnet_torch.train.make_optimizer`)."""
        return torch_train.make_optimizer(model, name, lr, momentum, weight_decay, betas, eps)

    def stock_optimizer(
        self,
        model: Any,
        name: str,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eps: float | None = None,
    ) -> Any:
        """torch's own optimizers are the reference: the same as `make_optimizer`."""
        return self.make_optimizer(model, name, lr, momentum, weight_decay, eps=1e-8 if eps is None else eps)

    def train_step(self, model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
        """One optimizer step on an NCHW batch (cast to the model's dtype); (mean cross-entropy, correct)."""
        return torch_train.train_step(model, optimizer, images.astype(self.dtype_of(model), copy=False), labels)

    def predict_logits(self, model: Any, images: np.ndarray) -> np.ndarray:
        """Logits of one NCHW batch in inference mode."""
        return torch_train.predict_logits(model, images.astype(self.dtype_of(model), copy=False))

    def train_step_with_gradients(
        self, model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray
    ) -> tuple[float, dict[str, np.ndarray]]:
        """`train_step` that also returns every gradient before the update ('{canonical key}' -> numpy)."""
        names = {id(p): k for k, p in model.named_parameters()}
        grads: dict[str, np.ndarray] = {}

        def keep(opt: Any, args: Any, kwargs: Any) -> None:
            for p in model.parameters():
                grads[names[id(p)]] = p.grad.detach().cpu().numpy().copy()

        hook = optimizer.register_step_pre_hook(keep)
        try:
            loss, _ = self.train_step(model, optimizer, images, labels)
        finally:
            hook.remove()
        return loss, grads

    def optimizer_state(self, model: Any, optimizer: Any) -> dict[str, np.ndarray]:
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

    def load_optimizer_state(self, model: Any, optimizer: Any, state: Mapping[str, np.ndarray]) -> None:
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

    def accumulated_step(self, model: Any, optimizer: Any, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """One SGD step on the mean of the parts' gradients, BatchNorm per part, part 0's running statistics
        kept: what DDP without SyncBatchNorm computes over len(parts) processes, in one process."""
        device = next(model.parameters()).device
        buffers = [b for _, b in model.named_buffers()]
        model.train()
        optimizer.zero_grad()
        kept: list[torch.Tensor] = []
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
