"""benchmarks/gpu.sh, the prepared CUDA check, run on the CPU as far as it can be (tiny sizes, no bench)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.extended  # 40 s: three checks in fresh processes (Keras on JAX and on torch)
def test_gpu_script_dry_run_writes_every_figure(tmp_path):
    env = {**os.environ, "GPU_SH_DRY_RUN": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        ["bash", "benchmarks/gpu.sh", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "gpu.json").read_text())["rows"]
    assert {r["run"] for r in rows} == {"check-tf32-off", "check-onnx"}
    assert all(r["passed"] for r in rows)
    assert len([r for r in rows if r["run"] == "check-onnx"]) == 3  # the native pair + torch's and Keras' ONNX files
    assert all(r["port_float64_max_rel"] < 1e-10 for r in rows if "port_float64_max_rel" in r)
