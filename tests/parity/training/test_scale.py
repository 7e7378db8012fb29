"""`resnet-parity scale`: N processes (torch DDP, gloo) or N devices (Keras on JAX) against one."""

from __future__ import annotations

import json
from contextlib import nullcontext

import pytest

from parity.cli import main
from parity.core import tolerances
from parity.training.scale import ScaleConfig, check_scale


def test_torch_ddp_over_two_processes_is_one_process_accumulating_two_shards(tmp_path, capsys):
    report_file = tmp_path / "scale.json"
    assert main(["scale", "--backend", "torch", "--nproc", "2", "--json", str(report_file)]) == 0
    out = capsys.readouterr().out
    assert "2 processes against one process accumulating 2 shards" in out and "torch: PASS" in out
    report = json.loads(report_file.read_text())[0]
    assert report["passed"] and len(report["worst"]) == 3
    assert max(report["worst"]) <= tolerances.SCALE_FP64
    # Without SyncBatchNorm each process normalises its own half: far from the global batch, and growing.
    assert 1e-3 < report["global_weights"][0] < report["global_weights"][-1]
    assert report["global_stats"][-1] > 1e-3


def test_keras_data_parallel_on_two_jax_cpu_devices_is_one_device():
    report = check_scale("keras", ScaleConfig(parts=2))
    assert report.engine == "keras.distribution.DataParallel (JAX)" and report.parts == 2
    assert max(report.worst) <= tolerances.SCALE_FP64, report.worst
    # BatchNorm statistics are global under DataParallel: the global batch *is* the expectation.
    assert max(report.global_weights + report.global_stats) <= tolerances.SCALE_FP64


@pytest.mark.parametrize(
    "args,message",
    [
        (["--backend", "torch", "--sync-bn"], "SyncBatchNorm runs on CUDA devices only"),
        (["--backend", "torch", "--batch", "6", "--nproc", "4"], "--batch 6 must split into 4 equal shards"),
        (["--backend", "keras", "--devices", "1"], "compares N >= 2 processes or devices with one"),
        (["--dtype", "float16"], "invalid choice: 'float16'"),
    ],
)
def test_scale_mistakes_are_named(args, message, capsys):
    with pytest.raises(SystemExit) if "invalid choice" in message else nullcontext():
        assert main(["scale", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.gpu
def test_sync_bn_over_two_gpus_is_the_global_batch():
    torch = pytest.importorskip("torch")
    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA devices (NCCL, one process per GPU)")
    report = check_scale("torch", ScaleConfig(parts=2, sync_bn=True, device="cuda"))
    assert report.expected == "one process, global batch"
    assert max(report.worst) <= tolerances.SCALE_FP64, report.worst
