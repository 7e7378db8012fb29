"""Data-parallel training for resnet_keras models (mirrors resnet_torch/distributed.py, same names).

The engine is Keras' own: `keras.distribution.DataParallel` over a one-axis device mesh, on the JAX
backend. One process runs one program over the global batch; Keras shards every batch along its
first axis across the devices (`train_on_batch` and `predict_on_batch` included), replicates the
variables, and XLA inserts the gradient all-reduce.

# FRAMEWORK: engine — on the TensorFlow backend the engine would be tf.distribute.MirroredStrategy,
# but Keras 3's `train_on_batch` does not split a batch across its replicas (per-replica values
# fail in its symbolic build: "'PerReplica' object has no attribute 'shape'"), and `keras.distribution`
# is JAX-only in Keras 3.15; so the Keras side distributes on JAX and refuses other backends.
"""

from __future__ import annotations

from typing import Any

import keras

ENGINE = "keras.distribution.DataParallel"


def init(devices: int) -> tuple[int, int, str]:
    """Distribute every Keras model built from now on over `devices` devices; (rank, processes, devices).

    Args:
        devices: how many devices (GPUs when JAX sees any, else CPU devices) share each batch.
    """
    # FRAMEWORK: world size — Keras is told the number of devices; torchrun decides the number of processes.
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(
            f"--devices {devices}: Keras data parallel training runs on the JAX backend "
            f"(keras.distribution); this Keras uses {backend}. Set KERAS_BACKEND=jax "
            "(or --keras-backend jax)"
        )
    available = keras.distribution.list_devices()
    if len(available) < devices:
        raise ValueError(
            f"--devices {devices}: JAX sees {len(available)} device(s) ({', '.join(available)}); "
            f"on CPU start with XLA_FLAGS=--xla_force_host_platform_device_count={devices}"
        )
    chosen = available[:devices]
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=chosen))
    return 0, 1, ",".join(chosen)


def convert(model: Any, sync_bn: bool, device: str) -> Any:
    """The model unchanged.

    # FRAMEWORK: BatchNorm — under DataParallel one program sees the whole (sharded) batch, so batch
    # statistics are always global: Keras on JAX behaves as torch with SyncBatchNorm, flag or not.
    """
    return model


def wrap(model: Any, device: str) -> Any:
    """The model unchanged: Keras distributed its variables when they were created under `init`."""
    return model


def all_sum(values: list[float]) -> list[float]:
    """`values`: one process already sees the global batch's loss and accuracy."""
    return list(values)


def broadcast(value: int) -> int:
    return value


def check_sync_bn(device: str) -> None:
    """Nothing to check: under DataParallel BatchNorm already normalises over the global batch (`convert`)."""


def finish() -> None:
    """Models built from now on are placed on one device again."""
    keras.distribution.set_distribution(None)
