"""Training primitives for resnet_torch models (mirrors resnet_keras/train.py, same names).

Images arrive as normalised NCHW float32 numpy batches from `parity.io.data`; labels as int64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from parity.spec import OPTIMIZERS


def make_optimizer(
    model: Any,
    name: str,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> Any:
    """torch's SGD or Adam over every parameter, weight decay coupled into the gradient.

    Args:
        model: a resnet_torch model.
        name: "sgd" or "adam".
        lr: learning rate (constant).
        momentum: SGD heavy-ball momentum (dampening 0, not Nesterov).
        weight_decay: L2 coefficient added to every gradient (torch's `weight_decay`).
        betas, eps: Adam's.
    """
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def train_step(model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """One optimizer step in training mode; returns (mean cross-entropy, correct predictions) before the step."""
    model.train()
    x = torch.from_numpy(images).to(_device(model))
    y = torch.from_numpy(labels).to(_device(model))
    optimizer.zero_grad()
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    correct = (logits.argmax(dim=1) == y).sum()
    return loss.item(), int(correct)


def predict_logits(model: Any, images: np.ndarray) -> np.ndarray:
    """Logits of one batch in inference mode (BN on running statistics)."""
    model.eval()
    x = torch.from_numpy(images).to(_device(model))
    with torch.no_grad():
        out = model(x)
    return out.cpu().numpy()
