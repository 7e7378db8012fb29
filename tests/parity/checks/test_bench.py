"""parity.checks.bench: every requested runtime timed or skipped with a reason, every figure in the JSON."""

from __future__ import annotations

import importlib.util
import json

import pytest

from parity.checks.bench import RUNTIMES, plot_bench, run_bench
from parity.cli import main
from parity.spec import make_spec

TINY = make_spec("resnet18", num_classes=10, stem="cifar", widths=(8, 16, 32, 64), stem_width=8)


def test_runtimes_are_timed_and_skips_say_why(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    result = run_bench(
        spec=TINY,
        batch=2,
        size=16,
        warmup=1,
        repeats=2,
        sgemm_size=256,  # the peak's measurement, not what is tested here: seconds less
        runtimes=[
            "torch",
            "torch-channels-last",
            "keras-tf",
            "ort-torch-export",
            "keras-jax",
            "train-torch",
            "train-keras",
        ],
    )
    by_name = {t.runtime: t for t in result.timings}
    assert by_name["keras-jax"].skipped == "jax is not installed"
    for name in ("torch", "torch-channels-last", "keras-tf", "ort-torch-export", "train-torch", "train-keras"):
        t = by_name[name]
        assert not t.skipped and t.ms_per_batch > 0, t
        assert t.images_per_s == pytest.approx(2 / (t.ms_per_batch / 1e3))
        assert t.of_peak == pytest.approx(t.gflops / result.sgemm_peak_gflops)
    assert result.sgemm_peak_gflops > 1 and result.gflop_per_image == pytest.approx(2 * TINY.macs(16, 16) / 1e9)
    png = plot_bench(result, tmp_path / "bench.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_json_carries_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--arch",
                "resnet18",
                "--size",
                "32",
                "--batch",
                "2",
                "--runtimes",
                "torch,ort-torch-export",
                "--repeats",
                "2",
                "--sgemm-size",
                "256",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert [t["runtime"] for t in data["timings"]] == ["torch", "ort-torch-export"]
    assert {"ms_per_batch", "images_per_s", "gflops", "of_peak"} <= set(data["timings"][0])
    assert data["versions"]["torch"] and data["sgemm_peak_gflops"] > 0
    assert "ort-torch-export" in capsys.readouterr().out


def test_unknown_runtime_is_named():
    with pytest.raises(SystemExit):
        main(["bench", "--runtimes", "torch,tensorrt"])
    with pytest.raises(ValueError, match="unknown runtime"):
        run_bench(runtimes=["nope"])
    assert set(RUNTIMES) >= {"torch-compile", "keras-tf-xla", "keras-torch", "ort-keras-export"}
