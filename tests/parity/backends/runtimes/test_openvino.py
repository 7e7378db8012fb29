"""OpenVINO from torch (convert_model), Keras (its own export) and ONNX; fp32 asked for; its default said."""

from __future__ import annotations

from parity.backends.runtimes import runtime_named
from parity.checks.runtimes import runtime_rows
from tests.parity.backends.runtimes.conftest import assert_caught, assert_passes, planted


def test_openvino_passes_a_port_and_localises_a_planted_bug(pair):
    t, k, x = pair
    torch_row, keras_row = runtime_rows(["openvino"], t, [t, planted(k)], x)
    assert_passes(torch_row)
    assert torch_row.route == "torch.export -> OpenVINO" and "INFERENCE_PRECISION_HINT=f32" in torch_row.evidence
    assert_caught(keras_row)
    assert keras_row.route == "Keras export -> OpenVINO"
    # The default, read off the plugin itself: bf16 on CPUs with AVX512-BF16 or AMX (this project's machines), where
    # the row says so with the error it gives; fp32 elsewhere, where there is nothing to say.
    default = runtime_named("openvino").default_precision()
    if default == "fp32":
        assert not torch_row.default_line
    else:
        assert f"openvino computes in {default} by default on this machine" in torch_row.default_line
        assert "this check asks for fp32 and got fp32" in torch_row.default_line


def test_openvino_reads_this_projects_onnx_file(pair, tmp_path):
    from parity.checks.export import export_onnx
    from parity.checks.runtimes import truth

    t, _, x = pair
    runtime = runtime_named("openvino")
    path = runtime.export("onnx", export_onnx(t, tmp_path / "t.onnx", height=64), tmp_path, x.shape, True)
    judged = truth(t, x).judge("logits", runtime.load(path, "fp32").run(x))
    assert judged.passed and path.with_suffix(".bin").is_file(), judged
