"""parity.cli: `resnet-parity summary` and `resnet-parity check`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from parity.checks.compare import cuda_available
from parity.cli import main
from parity.core import tolerances


def test_summary_table(capsys):
    assert main(["summary", "--arch", "resnet50", "--size", "224"]) == 0
    out = capsys.readouterr().out
    assert "25,557,032" in out and "4.089 G" in out
    assert "(2048, 7, 7)" in out
    assert out.count("25,557,032") == 5  # spec, torch, keras totals; Keras trainable and torch parameters() lines
    assert "Total params: 25,610,152" in out and "buffers(): 53,173" in out
    assert "53,120" in out


def test_summary_odd_size_and_variant(capsys):
    assert (
        main(
            [
                "summary",
                "--arch",
                "resnet50",
                "--size",
                "97",
                "131",
                "--variant",
                "keras_applications",
                "--backends",
                "",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "(2048, 4, 5)" in out
    assert "25,583,592" in out  # torchvision's count plus one bias per conv channel (26,560)


def test_check_json_carries_every_figure(tmp_path, capsys):
    json_path, md_path = tmp_path / "r.json", tmp_path / "r.md"
    code = main(
        [
            "check",
            "--arch",
            "resnet18",
            "--batch",
            "1",
            "--size",
            "64",
            "80",
            "--seed",
            "3",
            "--direction",
            "both",
            "--json",
            str(json_path),
            "--markdown",
            str(md_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    data = json.loads(json_path.read_text())
    assert data["passed"] is True
    assert data["config"]["size"] == [64, 80] and data["config"]["seed"] == 3
    assert [r["direction"] for r in data["results"]] == ["torch2keras", "keras2torch"]
    row = data["results"][0]
    for key in ("arch", "params", "output_shape", "max_abs", "max_rel", "first_divergent", "passed", "seconds"):
        assert key in row, key
    assert row["params"]["spec"] == row["params"]["torch"] == row["params"]["keras"] == 11_689_512
    assert row["output_shape"] == [1, 1000]
    assert 0 < row["max_rel"] <= tolerances.FP32_CPU
    assert len(row["report"]["stages"]) == 6
    assert f"{row['max_rel']:.2e}" in out and "PASS" in out
    assert f"{row['max_rel']:.2e}" in md_path.read_text()


def test_check_exits_nonzero_on_mismatch(monkeypatch, capsys):
    from parity.backends import adapter_named
    from parity.checks import check

    def naive_pair(spec):
        return adapter_named("torch").build(spec), adapter_named("keras").build_naive(spec, "bn_eps_default")

    monkeypatch.setattr(check, "build_pair", naive_pair)
    assert main(["check", "--arch", "resnet18", "--batch", "1", "--size", "64"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "stem" in out


def test_check_bad_arguments(capsys):
    assert main(["check", "--arch", "resnet19"]) == 2
    assert "unknown arch 'resnet19'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["check", "--batch", "0"])
    assert "must be a positive integer" in capsys.readouterr().err


@pytest.mark.skipif(cuda_available(), reason="checks the message shown where there is no GPU")
def test_check_cuda_without_gpu(capsys):
    assert main(["check", "--arch", "resnet18", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA device")
def test_check_on_cuda(tmp_path):
    json_path = tmp_path / "gpu.json"
    assert main(["check", "--arch", "resnet18,resnet50", "--device", "cuda", "--json", str(json_path)]) == 0
    data = json.loads(json_path.read_text())
    assert all(r["report"]["tf32"] is False for r in data["results"])


def test_console_script_installed():
    exe = shutil.which("resnet-parity") or shutil.which(
        "resnet-parity", path=str(__import__("pathlib").Path(sys.executable).parent)
    )
    assert exe, "the resnet-parity console script is not on PATH"
    result = subprocess.run(
        [exe, "summary", "--arch", "resnet18", "--backends", ""], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "11,689,512" in result.stdout


def test_summary_by_layer_with_overrides_and_json(tmp_path, capsys):
    path = tmp_path / "s.json"
    assert (
        main(
            [
                "summary",
                "--arch",
                "resnet18",
                "--variant",
                "same_bias_conv_shortcut",
                "--depth",
                "layer",
                "--set",
                "num_classes=10",
                "--in-channels",
                "1",
                "--json",
                str(path),
            ]
        )
        == 0
    )
    out = " ".join(capsys.readouterr().out.split())
    assert "layer1.0.downsample.0" in out and "same" in out
    # 12,045,800 - 513,000 (fc of 1000) + 5,130 (fc of 10) - 6,272 (stem conv on 1 channel, not 3)
    assert "Total params: 11,539,466" in out and "Non-trainable params: 7,808" in out
    data = json.loads(path.read_text())
    assert data["spec"]["num_classes"] == 10 and data["spec"]["in_channels"] == 1
    assert data["built"]["keras"]["keras_total"] == data["totals"]["keras_total"] == 11_539_466
    assert data["built"]["torch"]["torch_buffers"] == data["totals"]["torch_buffers"]
    assert sum(r["params"] for r in data["rows"]) == data["totals"]["trainable"]
    assert main(["summary", "--set", "shortcut=sometimes"]) == 2
    assert (
        "shortcut must be one of ('projection', 'always', 'subsample', 'first'), got 'sometimes'"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "arch, variant", [("resnet18", "unpadded_stem_relu_before_add"), ("resnet18", "same_bias_conv_shortcut")]
)
def test_check_variant_at_its_own_size(arch, variant, tmp_path):
    path = tmp_path / "v.json"
    assert main(["check", "--arch", arch, "--variant", variant, "--batch", "1", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    expected = {"unpadded_stem_relu_before_add": [96, 96]}.get(variant, [224, 224])
    assert data["config"]["size"] == expected
    assert all(r["passed"] and r["variant"] == variant for r in data["results"])


def test_bn_form_is_read_off_the_graph():
    from parity.cli.check import bn_form

    assert bn_form({"Conv": 20, "Relu": 17, "Add": 8}) == "folded into the convs"
    assert bn_form({"Conv": 20, "Sub": 20, "Mul": 20}) == "computed as 20 Sub, 20 Mul"
    assert bn_form({"BatchNormalization": 20}) == "computed as 20 BatchNormalization"


def test_keras_onnx_under_jax_is_skipped_in_one_line(monkeypatch):
    """Under JAX the Keras model has no ONNX export: its onnxruntime row is skipped saying why (the torch row runs).
    The backend the adapter reads is set to jax here; `resnet-parity check --keras-backend jax` reads the same."""
    import keras

    from parity.backends import adapter_named
    from parity.backends.runtimes import runtime_named
    from parity.checks.runtimes import route
    from parity.spec import make_spec

    spec = make_spec("resnet18", widths=(8, 16, 32, 64), stem_width=8)
    models = [adapter_named(name).build(spec) for name in ("keras", "torch")]
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    (none, why), (way, _) = (route(runtime_named("onnxruntime"), model) for model in models)
    assert none is None and way is not None and way.text() == "torch.onnx -> ONNX -> onnxruntime"
    assert why.startswith("ONNX export of the Keras model needs the tensorflow or torch Keras backend")
