"""`resnet-parity train --nproc N` (torchrun, DDP over gloo) and `--devices N` (Keras on JAX), as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from parity.cli import main
from parity.training.distributed import check_divisible, shard, state_epochs, without_option
from tests.parity.training.test_trainer import NARROW

AUDIT = textwrap.dedent("""
    # Installed as sitecustomize in every process of the test's torchrun: logs, one line per event
    # and flushed at once (a killed process keeps its log), every write this process makes under RUN_DIR.
    import os, sys
    if os.environ.get("AUDIT_DIR") and "RANK" in os.environ:
        _log = open(os.path.join(os.environ["AUDIT_DIR"], "rank-" + os.environ["RANK"] + ".log"), "a", buffering=1)
        _log.write("pid %d\\n" % os.getpid())
        _root = os.path.realpath(os.environ["AUDIT_RUN_DIR"])
        _writes = (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        def _hook(event, args):
            paths = []
            if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
                mode, flags = args[1] or "", args[2] or 0
                if any(c in mode for c in "wax+") or flags & _writes:
                    paths = [args[0]]
            elif event in ("os.rename", "os.replace", "os.remove", "os.mkdir", "os.rmdir", "os.chmod"):
                paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
            for path in paths:
                path = os.path.realpath(os.fsdecode(path))
                if path.startswith(_root):
                    _log.write(event + " " + path + "\\n")
        sys.addaudithook(_hook)
""")

TINY = [*NARROW, "--backend", "torch", "--data", "digits"]


def test_shard_slices_the_global_batch_in_order():
    images, labels = np.arange(8 * 3).reshape(8, 3), np.arange(8)
    parts = [shard(images, labels, r, 4) for r in range(4)]
    assert np.array_equal(np.concatenate([p[1] for p in parts]), labels)
    assert [p[0].shape for p in parts] == [(2, 3)] * 4
    with pytest.raises(ValueError, match="--batch 30 is the global batch and must divide evenly over 4 processes"):
        check_divisible(30, 4, "processes")
    assert without_option(["train", "--nproc", "2", "--out", "x", "--nproc=3"], "--nproc") == ["train", "--out", "x"]


def _rank_log(audit, rank):
    """(pid of the latest process with this rank, every write logged by any process with this rank)."""
    lines = (audit / f"rank-{rank}.log").read_text().splitlines()
    pids = [int(line.split()[1]) for line in lines if line.startswith("pid ")]
    return pids[-1], [line for line in lines if not line.startswith("pid ")]


def _audited(tmp_path):
    """(environment whose processes log every write under the run folder, the log folder, the run folder)."""
    hook, audit, out = tmp_path / "hook", tmp_path / "audit", tmp_path / "run"
    hook.mkdir(), audit.mkdir()
    (hook / "sitecustomize.py").write_text(AUDIT)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), *sys.path]),
        "AUDIT_DIR": str(audit),
        "AUDIT_RUN_DIR": str(out),
    }
    return env, audit, out


def test_two_process_run_writes_once_survives_a_killed_rank_and_resumes(tmp_path):
    """Only process 0 writes; SIGKILL of process 1 in epoch 2 ends the run with one clear error, the
    epoch-1 checkpoint intact; --resume over 2 processes finishes the run."""
    env, audit, out = _audited(tmp_path)
    command = [sys.executable, "-m", "parity.cli", "train", *TINY, "--nproc", "2", "--out", str(out)]
    run = subprocess.Popen(
        [*command, "--epochs", "3"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    state, history = out / "torch" / "state-1.safetensors", out / "torch" / "history.json"
    deadline = time.monotonic() + 240
    # history.json is written right after the state: kill once epoch 1 is on disk, not mid-write.
    while not history.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state.exists() and history.exists(), run.communicate()
    os.kill(_rank_log(audit, 1)[0], signal.SIGKILL)
    stdout, stderr = run.communicate(timeout=240)
    assert run.returncode == 2, stderr
    assert "a process of the 2-process run failed" in stderr
    assert f"the last good checkpoint is {state}; continue with --resume" in stderr

    # Process 1 wrote nothing under the run directory; process 0 wrote the run.
    _, writes_1 = _rank_log(audit, 1)
    _, writes_0 = _rank_log(audit, 0)
    assert writes_1 == []
    assert any(line.endswith("/run.json") for line in writes_0) and any("state-1" in line for line in writes_0)
    assert not list(out.rglob(".tmp-*"))
    assert json.loads(history.read_text())[0]["epoch"] == 1
    assert (
        "torch DistributedDataParallel: 2 processes" in json.loads((out / "run.json").read_text())["parallel"]["torch"]
    )

    resumed = subprocess.run([*command, "--epochs", "2", "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 1" in resumed.stdout
    rows = json.loads(history.read_text())
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["val_acc"] > 0.8, rows
    assert (out / "torch" / "state-2.safetensors").exists() and not state.exists()
    assert _rank_log(audit, 1)[1] == []  # the resumed process 1 wrote nothing either


def _descendants(pid):
    """The processes below `pid` (Linux /proc): torchrun and the processes it started."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while listed
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids):
    return [p for p in pids if Path(f"/proc/{p}").exists()]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="lists processes through Linux's /proc")
def test_sigterm_or_ctrl_c_stops_every_process_and_says_once_what_the_run_holds(tmp_path):
    """SIGTERM to `train --nproc 2` left torchrun and both processes running (a new state file appeared 100 s
    later); Ctrl-C printed torch's warnings and "interrupted" twice, without the epoch the folder held."""
    env, audit, out = _audited(tmp_path)
    smaller = [
        "--size",
        "8",
        "--set",
        "widths=4,8,16,32",
        "--set",
        "stem_width=4",
        "--batch",
        "128",
    ]  # epochs of 12 steps
    command = [sys.executable, "-m", "parity.cli", "train", *TINY, *smaller, "--nproc", "2", "--epochs", "90"]
    command += ["--out", str(out)]

    # SIGTERM to the command alone (a job scheduler, `kill`), after epoch 1 was written
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out / "torch" / "history.json").exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    family = _descendants(run.pid)
    assert len(family) >= 3, run.communicate()  # torchrun and its two processes
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert _alive(family) == []  # every one had exited when the command did
    held = state_epochs(out / "torch")
    assert run.returncode == 128 + signal.SIGTERM and held
    assert stderr.splitlines() == [
        f"resnet-parity train: interrupted; {out} holds epoch {held[-1]}, continue with --resume"
    ]
    time.sleep(2)
    assert state_epochs(out / "torch") == held

    # Ctrl-C on a terminal (SIGINT to the foreground group) while the two processes start: before epoch 1
    shutil.rmtree(out), shutil.rmtree(audit), audit.mkdir()
    run = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    while len(list(audit.glob("rank-*.log"))) < 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    family = _descendants(run.pid)
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert _alive(family) == []
    assert run.returncode == 128 + signal.SIGINT
    assert stderr.splitlines() == [f"resnet-parity train: interrupted before epoch 1 ended; {out} was removed"]
    assert not out.exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--backend", "both", "--nproc", "2"],
            "--nproc 2 trains the torch backend in 2 torchrun processes; add --backend torch",
        ),
        (["--backend", "torch", "--nproc", "2", "--sync-bn"], "SyncBatchNorm runs on CUDA devices only"),
        (
            ["--backend", "torch", "--nproc", "3"],
            "--batch 32 is the global batch and must divide evenly over 3 processes",
        ),
        (
            ["--backend", "torch", "--devices", "2"],
            "--devices 2 spreads the Keras model over devices (--backend keras)",
        ),
        (["--backend", "keras", "--devices", "2"], "Keras data parallel training runs on the JAX backend"),
    ],
)
def test_distributed_mistakes_are_refused_before_any_work(args, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", *NARROW, *args, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "run.json").exists()


@pytest.mark.extended  # 30 s; the Keras engine's parity over two devices is in CI (training/test_scale.py)
def test_keras_trains_over_two_jax_cpu_devices(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "parity.cli",
            "train",
            "--data",
            "digits",
            *NARROW,
            "--backend",
            "keras",
            "--devices",
            "2",
            "--epochs",
            "1",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "keras.distribution.DataParallel on JAX: 2 devices (cpu:0,cpu:1), 16 images each" in done.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["keras_backend"] == "jax" and "2 devices" in run["parallel"]["keras"]
    rows = json.loads((out / "keras" / "history.json").read_text())
    assert rows[0]["val_acc"] > 0.5, rows


@pytest.mark.gpu
def test_nccl_run_over_two_gpus(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA devices (NCCL, one process per GPU)")
    out = tmp_path / "run"
    assert (
        main(["train", *TINY, "--nproc", "2", "--sync-bn", "--device", "cuda", "--epochs", "1", "--out", str(out)]) == 0
    )
    assert "SyncBatchNorm" in json.loads((out / "run.json").read_text())["parallel"]["torch"]
