"""onnxruntime on both models' ONNX files: a correct torch port passes, a planted Keras bug is found in layer1.0."""

from __future__ import annotations

from parity.checks.runtimes import runtime_rows
from tests.parity.backends.runtimes.conftest import assert_caught, assert_passes, planted


def test_onnxruntime_passes_a_port_and_localises_a_planted_bug(pair):
    t, k, x = pair
    torch_row, keras_row = runtime_rows(["onnxruntime"], t, [t, planted(k)], x)
    assert_passes(torch_row)
    assert (
        torch_row.route == "torch.onnx -> ONNX -> onnxruntime" and torch_row.ops["Conv"] == 12
    )  # stem, 4 blocks x 2, 3 projections
    assert_caught(keras_row)
    assert not torch_row.default_line  # an fp32 graph on the CPU provider has no lower default


def test_check_runtime_prints_the_table_and_writes_every_figure(tmp_path, capsys):
    import json

    from parity.cli import main

    out, md = tmp_path / "check.json", tmp_path / "check.md"
    args = ["check", "--arch", "resnet18", "--set", "widths=8,16,32,64", "--set", "stem_width=8", "--set"]
    args += ["layers=1,1,1,1", "--size", "64", "--runtime", "onnxruntime", "--direction", "torch2keras"]
    assert main(args + ["--json", str(out), "--markdown", str(md)]) == 0
    printed = capsys.readouterr().out
    assert "runtimes, each judged against the torch model's float64 output" in printed
    assert "Keras export -> ONNX -> onnxruntime" in printed and "ONNX ops per graph" in printed
    data = json.loads(out.read_text())
    assert data["config"]["runtimes"] == ["onnxruntime"] and data["passed"]
    rows = data["results"][0]["runtimes"]
    assert [r["source"] for r in rows] == ["torch", "keras"]
    for row in rows:
        assert row["verdict"] == "PASS" and row["precision"] == "fp32" and row["diff"]["ratio"] <= 5
        assert len(row["probes"]) == 4 and row["file_bytes"] > 0 and row["ms_per_batch"] > 0
    assert "| resnet18 | keras | Keras export -> ONNX -> onnxruntime |" in md.read_text()
