"""parity.checks.bench: every requested runtime timed or skipped with a reason, every figure in the JSON."""

from __future__ import annotations

import importlib.util
import json

import pytest

from parity.checks.bench import RUNTIMES, run_bench
from parity.checks.bench_plot import plot_bench
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
            "onnxruntime-torch",
            "keras-jax",
            "train-torch",
            "train-keras",
        ],
    )
    by_name = {t.runtime: t for t in result.timings}
    assert by_name["keras-jax"].skipped == "jax is not installed"
    for name in ("torch", "torch-channels-last", "keras-tf", "onnxruntime-torch", "train-torch", "train-keras"):
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
                "torch,onnxruntime-torch",
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
    assert [t["runtime"] for t in data["timings"]] == ["torch", "onnxruntime-torch"]
    assert {"ms_per_batch", "images_per_s", "gflops", "of_peak"} <= set(data["timings"][0])
    assert data["versions"]["torch"] and data["sgemm_peak_gflops"] > 0
    assert "onnxruntime-torch" in capsys.readouterr().out


def test_unknown_runtime_is_named():
    with pytest.raises(SystemExit):
        main(["bench", "--runtimes", "torch,tensorrt"])
    with pytest.raises(ValueError, match="unknown runtime"):
        run_bench(runtimes=["nope"])
    assert set(RUNTIMES) >= {"torch-compile", "keras-tf-xla", "keras-torch", "onnxruntime-keras", "openvino-torch"}
    assert "executorch-keras" not in RUNTIMES and "saved_model-torch" not in RUNTIMES  # sources they do not take


def test_interleaved_timing_takes_one_call_of_each_in_turn():
    from parity.checks.bench import interleaved_seconds

    calls = []
    times = interleaved_seconds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 1, 3)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed rounds, alternating
    assert [len(v) for v in times.values()] == [3, 3]


def test_bench_runtime_times_each_deployment_runtime_beside_the_frameworks(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "--arch", "resnet18", "--size", "32", "--batch", "2", "--runtime", "openvino"]
    args += ["--set", "widths=8,16,32,64", "--set", "stem_width=8", "--set", "layers=1,1,1,1", "--repeats", "2"]
    args += ["--sgemm-size", "256"]
    assert main(args + ["--json", str(out)]) == 0
    timings = {t["runtime"]: t for t in json.loads(out.read_text())["timings"]}
    assert list(timings) == ["torch", "keras-tf", "openvino-torch", "openvino-keras"]
    for name in ("openvino-torch", "openvino-keras"):
        assert timings[name]["ms_per_batch"] > 0 and timings[name]["of_peak"] > 0, timings[name]
    with pytest.raises(SystemExit):
        main(["bench", "--runtime", "tensorrt"])
    assert "no such runtime; choose from all, onnxruntime, openvino" in capsys.readouterr().err


def test_bench_precision_times_each_row_beside_its_fp32_row(tmp_path):
    out = tmp_path / "bench.json"
    args = ["bench", "--arch", "resnet18", "--size", "32", "--batch", "2", "--runtimes", "torch"]
    args += ["--runtime", "onnxruntime", "--precision", "fp16", "--repeats", "2", "--sgemm-size", "256"]
    args += ["--set", "widths=8,16,32,64", "--set", "stem_width=8", "--set", "layers=1,1,1,1"]
    assert main(args + ["--json", str(out)]) == 0
    result = json.loads(out.read_text())
    timings = {t["runtime"]: t for t in result["timings"]}
    assert result["precision"] == "fp16" and list(timings) == [
        "torch",
        "torch@fp16",
        "onnxruntime-torch",
        "onnxruntime-torch@fp16",
        "onnxruntime-keras",
        "onnxruntime-keras@fp16",
    ]
    for name, timing in timings.items():
        assert timing["ms_per_batch"] > 0 and not timing["skipped"], timing
        base = timings[name.split("@")[0]]
        if "@" in name:  # the ratio of the two rows' own medians, measured interleaved
            assert (
                timing["kind"] == "fp16"
                and abs(timing["speedup"] - base["ms_per_batch"] / timing["ms_per_batch"]) < 1e-6
            )
        else:
            assert timing["speedup"] is None
