"""Data-parallel training for resnet_torch models (mirrors resnet_keras/distributed.py, same names).

The engine is PyTorch's own: `torchrun` starts one process per device and sets RANK, WORLD_SIZE,
LOCAL_RANK and the rendezvous address; each process feeds its shard of every global batch, and
DistributedDataParallel averages the gradients across processes during backward (NCCL between
GPUs, gloo between CPU processes).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

ENGINE = "torch DistributedDataParallel"


def init(device: str) -> tuple[int, int, str]:
    """Join the process group torchrun set up; (rank, number of processes, this process's device).

    Args:
        device: "cpu" (gloo) or "cuda" (NCCL; process LOCAL_RANK takes GPU LOCAL_RANK).
    """
    # FRAMEWORK: world size — torchrun decides the number of processes (--nproc-per-node, --nnodes);
    # Keras is told the number of devices.
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError(
            "torch data parallel runs under torchrun (RANK and WORLD_SIZE are not set); "
            "use `resnet-parity train --nproc N` or `torchrun --nproc-per-node N -m parity.cli train`"
        )
    if device.startswith("cuda"):
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def convert(model: Any, sync_bn: bool, device: str) -> Any:
    """The model whose BatchNorm layers normalise over the global batch when `sync_bn` (else unchanged).

    Args:
        model: a resnet_torch model (parameters and state_dict keys are kept).
        sync_bn: replace every BatchNorm2d by SyncBatchNorm.
        device: where the model runs; torch's SyncBatchNorm refuses CPU tensors.
    """
    if not sync_bn:
        return model
    check_sync_bn(device)
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def check_sync_bn(device: str) -> None:
    """Refuse SyncBatchNorm where torch cannot run it.

    # FRAMEWORK: SyncBatchNorm — torch only; Keras on JAX needs no conversion (see its `convert`).
    """
    if not device.startswith("cuda"):
        raise ValueError(
            "--sync-bn: torch's SyncBatchNorm runs on CUDA devices only (it refuses CPU tensors); "
            "train on CPU without --sync-bn (BatchNorm per process) or on GPUs"
        )


def wrap(model: Any, device: str) -> Any:
    """The module the training loop calls: DDP around `model` (rank 0's weights are broadcast to all)."""
    if device.startswith("cuda"):
        return DistributedDataParallel(model, device_ids=[torch.device(device).index])
    return DistributedDataParallel(model)


def all_sum(values: list[float]) -> list[float]:
    """Sums of `values` over every process (float64 on the CPU: gloo reduces any tensor)."""
    on = "cuda" if dist.get_backend() == "nccl" else "cpu"
    total = torch.tensor(values, dtype=torch.float64, device=on)
    dist.all_reduce(total)
    return total.cpu().tolist()


def broadcast(value: int) -> int:
    """Rank 0's `value` on every process."""
    on = "cuda" if dist.get_backend() == "nccl" else "cpu"
    box = torch.tensor([value], dtype=torch.int64, device=on)
    dist.broadcast(box, 0)
    return int(box.item())


def finish() -> None:
    """Leave the process group (the run ended normally)."""
    if dist.is_initialized():
        dist.destroy_process_group()
