"""Running one training run over several processes or devices, framework-free parts.

torch: `resnet-parity train --nproc N` starts `torchrun --standalone --nproc-per-node N -m parity.cli
train ...` (the same command line without --nproc); several machines run torchrun themselves with
--nnodes and --rdzv-endpoint. Every process reads the same seeded global batches and trains on its
slice `shard(...)`; process 0 alone writes the run directory.
Keras: `--devices N` in one process (`resnet_keras.distributed`, through `parity.backends.keras.data_parallel`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from parity.core import signals
from parity.core.logs import verbose


def host_devices_flag(devices: int) -> None:
    """Let JAX split the CPU into `devices` devices (read when JAX first starts; harmless with GPUs).

    A no-op when XLA_FLAGS already sets a device count: the caller's choice wins.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()


def torchrun_world() -> tuple[int, int]:
    """(rank, number of processes) that torchrun set for this process; (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def check_divisible(batch: int, parts: int, what: str) -> None:
    """Refuse a global batch that `parts` processes or devices cannot share equally."""
    if batch % parts:
        raise ValueError(
            f"--batch {batch} is the global batch and must divide evenly over {parts} {what} "
            f"(each takes batch / {parts}); use a multiple of {parts}"
        )


def shard(images: np.ndarray, labels: np.ndarray, rank: int, parts: int) -> tuple[np.ndarray, np.ndarray]:
    """Process `rank`'s contiguous slice of a global batch (the global batch divides evenly)."""
    size = len(labels) // parts
    return images[rank * size : (rank + 1) * size], labels[rank * size : (rank + 1) * size]


def without_option(argv: Sequence[str], option: str) -> list[str]:
    """`argv` without `option VALUE` / `option=VALUE`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def state_epochs(folder: Path) -> list[int]:
    """Epochs of the `state-E.safetensors` files in a backend's run folder, ascending."""
    return sorted(int(p.name[len("state-") : -len(".safetensors")]) for p in folder.glob("state-*.safetensors"))


def torchrun_command(nproc: int, argv: Sequence[str], module: str = "parity.cli") -> list[str]:
    """The torchrun command line that runs `python -m <module> <argv>` in `nproc` local processes.

    torchrun runs through `parity.backends.torch.launcher`, which ends on a signal without a traceback.
    """
    return [
        sys.executable,
        "-m",
        "parity.backends.torch.launcher",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        module,
        *argv,
    ]


def launch(nproc: int, argv: Sequence[str], out: Path, created: bool) -> None:
    """Run `resnet-parity <argv>` under torchrun in `nproc` processes; a failed process is one clear error.

    torchrun and its processes run in their own process group: Ctrl-C or SIGTERM here goes to the whole
    group and this process waits until every one of them has exited, then says in one line what the run
    directory holds. The processes stay quiet on an interrupt (this one speaks for them), and torchrun's
    own warnings are silenced unless --verbose or LOGLEVEL asks for them.

    Args:
        nproc: processes on this machine.
        argv: the train command line without --nproc.
        out: its run directory (named in the error with the checkpoint to resume from).
        created: `out` was made for this run (an interrupt before epoch 1 removes it, as one process does).
    """
    env = {**os.environ, signals.LAUNCHED: "1"}
    if not verbose():
        env.setdefault("LOGLEVEL", "ERROR")  # torch.distributed.elastic's logger: its W lines on every start and stop
    child = subprocess.Popen(torchrun_command(nproc, argv), env=env, start_new_session=True)
    with signals.forwarded(child.pid) as received:
        code = child.wait()
    epochs = state_epochs(out / "torch")
    if received:
        if epochs:
            raise KeyboardInterrupt(f"interrupted; {out} holds epoch {epochs[-1]}, continue with --resume")
        if created:
            shutil.rmtree(out, ignore_errors=True)
            raise KeyboardInterrupt(f"interrupted before epoch 1 ended; {out} was removed")
        raise KeyboardInterrupt(f"interrupted before epoch 1 ended; {out} holds no epoch to resume from")
    if code == 0:
        return
    keep = (
        f"the last good checkpoint is {out / 'torch' / f'state-{epochs[-1]}.safetensors'}; continue with --resume"
        if epochs
        else "no epoch had completed, so there is no checkpoint to resume from"
    )
    raise RuntimeError(
        f"torchrun: a process of the {nproc}-process run failed (exit code {code}; its error is above); {keep}"
    )
