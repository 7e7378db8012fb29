"""Low precision judged against the float64 truth and the reference's own error: a correct port passes in bf16, fp16
and int8; a planted bug, an fp16 overflow and a quantisation-hostile layer are named where they are."""

from __future__ import annotations

import numpy as np
import pytest

from parity.backends import adapter
from parity.backends.runtimes import missing
from parity.checks.check import CheckConfig, build_pair, check_arch, default_weights
from parity.checks.precision import FP16_MAX, precision_rows
from parity.cli import main
from parity.core import tolerances
from parity.io import photos
from parity.io.photos import CALIBRATION, JUDGED, photo_inputs
from parity.io.weights import copy_weights, set_weights
from parity.spec import make_spec

SPEC = make_spec("resnet18", widths=(8, 16, 32, 64), stem_width=8, num_classes=10, layers=(1, 1, 1, 1))
SIZE = 64
IMAGES = 8
"""Judged and calibration photographs per test (the check's default is 24 of each)."""
BUG = "layer1.0.conv1.weight"
NARROW = ["--arch", "resnet18", "--size", "64", "--num-classes", "10", "--set", "widths=8,16,32,64"]
NARROW += ["--set", "stem_width=8", "--set", "layers=1,1,1,1", "--direction", "torch2keras"]


def weights(change=None) -> dict:
    found = default_weights(SPEC, 0, SIZE, SIZE, data="photos")
    if change:
        change(found)
    return found


def judge(precision: str, engines: list[str], values: dict, bug: float = 1.0):
    """The precision pass on the torch model (reference) and its Keras port (output channel 0 of BUG times `bug`)."""
    torch_model, keras_model = build_pair(SPEC)
    set_weights(torch_model, values)
    copy_weights(torch_model, keras_model)
    if bug != 1.0:
        ported = adapter(keras_model).get_weights(keras_model)
        ported[BUG][0] *= bug
        set_weights(keras_model, ported)
    x = photo_inputs(SPEC, JUDGED, SIZE, SIZE, IMAGES)
    calibration = photo_inputs(SPEC, CALIBRATION, SIZE, SIZE, IMAGES)
    return precision_rows(precision, torch_model, [torch_model, keras_model], x, calibration, engines, "photos")


def rows_of(report, engine):
    return [
        row
        for row in report.rows
        if row.engine == engine or (engine == "frameworks" and row.engine in ("torch", "keras"))
    ]


def test_photographs_are_real_shipped_and_deterministic():
    batch = photos.photo_batch(photos.COUNT, 32)
    assert batch.shape == (48, 3, 32, 32) and batch.dtype == np.float32
    assert np.array_equal(batch, photos.photo_batch(48, 32))
    assert np.array_equal(batch[1], batch[0][:, :, ::-1])  # each cut is also given mirrored
    assert len({round(float(image.mean()), 4) for image in batch[::2]}) == 24  # 24 different cuts
    # Real images: each image's channel means spread (noise's are all ~0), neighbouring pixels correlated.
    assert (
        float(batch.mean(axis=(2, 3)).std()) > 0.3
        and np.corrcoef(batch[:, 0, :, :-1].ravel(), batch[:, 0, :, 1:].ravel())[0, 1] > 0.8
    )
    assert "CC BY 2.0" in photos.LICENCE and all((photos.folder() / name).is_file() for name in photos.FILES)
    assert photos.photo_batch(2, (24, 40), channels=1).shape == (2, 1, 24, 40)


def test_photographs_missing_scikit_learn_is_one_line(monkeypatch):
    monkeypatch.setattr(photos.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"^the photographs come with scikit-learn.*\[data\]"):
        photos.folder()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_correct_port_passes_in_its_framework(precision):
    report = judge(precision, ["frameworks"], weights())
    torch_row, keras_row = report.rows
    assert (torch_row.engine, keras_row.engine) == ("torch", "keras") and torch_row.reference
    assert report.passed and keras_row.verdict == "PASS", keras_row.to_dict()
    assert keras_row.ratio <= tolerances.LOW_PRECISION_MULTIPLE and torch_row.ratio == 1.0
    unit_roundoff = {"bf16": 2**-8, "fp16": 2**-11}[precision]
    assert unit_roundoff < keras_row.max_rel < 100 * unit_roundoff  # it really computed in that precision
    assert keras_row.top1 == 1.0 and 0 <= keras_row.kl < 1e-3
    assert [u.unit for u in keras_row.units] == ["stem", "layer1.0", "layer2.0", "layer3.0", "layer4.0", "head"]
    assert keras_row.layers and keras_row.layers_of == "every unit" and not keras_row.wrong_layers
    assert "every activation stays within fp16's range" in report.overflow or precision == "bf16"


def test_a_planted_one_percent_bug_is_named_in_fp16_and_shows_in_bf16():
    fp16 = judge("fp16", ["frameworks"], weights(), bug=1.01)
    keras_row = rows_of(fp16, "frameworks")[1]
    # At its own layer the bug is 20-37x fp16's error there (an fp16 step is 2**-11; 1.01 is 20 steps).
    assert keras_row.verdict == "FAIL" and keras_row.wrong_layers == ["layer1.0.conv1"], keras_row.to_dict()
    assert keras_row.worst_layer.unit == "layer1.0.conv1" and keras_row.worst_layer.ratio > 10
    bf16 = judge("bf16", ["frameworks"], weights(), bug=1.01)
    keras_row = rows_of(bf16, "frameworks")[1]
    # bf16's step is 2**-8: 1.01 is 2.5 steps, 2.0-4.5x bf16's error at the layer (measured over every conv of
    # resnet18): the largest of any layer, within the multiple. The check at --precision bf16 still fails the port:
    # its float64 verdict sees the bug (below).
    ratios = {layer.unit: layer.ratio for layer in keras_row.layers}
    assert max(ratios, key=ratios.get) == "layer1.0.conv1" and ratios["layer1.0.conv1"] > 1.5, ratios


def test_the_check_at_bf16_fails_a_planted_bug_by_its_float64_verdict(monkeypatch):
    import parity.checks.check as check

    original = check.copy_weights

    def planted(src, dst):
        original(src, dst)
        values = adapter(dst).get_weights(dst)
        values[BUG][0] *= 1.01
        set_weights(dst, values)

    monkeypatch.setattr(check, "copy_weights", planted)
    result = check_arch(SPEC, CheckConfig(batch=2, height=SIZE, precision="bf16"))
    assert not result.passed and result.report.first_wrong == "layer1.0.conv1"
    assert result.precision.rows[1].engine == "keras" and result.precision.rows[1].ratio < 5


def overflowing(values):
    """The same float function, layer3.0.conv1 20,000x larger and its BatchNorm undoing it: a checkpoint whose
    activations leave fp16's range."""
    values["layer3.0.conv1.weight"] *= 2e4
    values["layer3.0.bn1.running_mean"] *= 2e4
    values["layer3.0.bn1.running_var"] *= 4e8


def hostile(values):
    """The same float function, channel 0 of layer2.0.bn1's output 100x larger than the rest (and layer2.0.conv2's
    weights on it 100x smaller): one activation range int8 must cover."""
    values["layer2.0.bn1.weight"][0] *= 100
    values["layer2.0.bn1.bias"][0] *= 100
    values["layer2.0.conv2.weight"][:, 0] /= 100


def check_file(tmp_path, change, *args) -> tuple[int, dict, str]:
    """`resnet-parity check --weights FILE.pth` on the changed network, as a user runs it: (exit code, JSON, stdout)."""
    from parity.io.checkpoints import write_checkpoint

    path, out = tmp_path / "net.pth", tmp_path / "check.json"
    write_checkpoint(weights(change), path, SPEC)
    code = main(
        ["check", "--weights", str(path), "--size", "64", "--direction", "torch2keras", *args, "--json", str(out)]
    )
    import json

    return code, json.loads(out.read_text()), ""


def test_fp16_overflow_in_a_checkpoint_is_named_at_its_first_layer(tmp_path, capsys):
    code, data, _ = check_file(tmp_path, overflowing, "--precision", "fp16")
    printed = capsys.readouterr().out
    report = data["results"][0]["precision"]
    assert code == 1 and report["overflow_layer"] == "layer3.0.conv1" and report["overflow_value"] > FP16_MAX
    assert "fp16: layer3.0.conv1 leaves fp16's range first: its largest |value| is " in printed
    assert data["results"][0]["report"]["passed"]  # the port itself is right; fp16 cannot hold the network
    for row in report["rows"]:
        assert row["verdict"] == "FAIL" and not row["finite"] and row["worst_unit"]["unit"] == "layer3.0"


@pytest.mark.skipif(bool(missing("onnxruntime")), reason="onnxruntime is not installed")
def test_int8_names_the_quantisation_hostile_layer_and_passes_the_port(tmp_path, capsys):
    code, data, _ = check_file(tmp_path, hostile, "--precision", "int8", "--runtime", "onnxruntime")
    printed = capsys.readouterr().out
    torch_row, keras_row = data["results"][0]["precision"]["rows"]
    assert code == 0 and keras_row["ratio"] <= tolerances.LOW_PRECISION_MULTIPLE, keras_row
    assert torch_row["seen"].startswith("int8 (an int8 QDQ graph") and keras_row["seen"].startswith("int8")
    for row in (torch_row, keras_row):
        assert row["worst_unit"]["unit"] == "layer2.0" and row["worst_layer"]["layer"] == "layer2.0.conv2", row
        others = [u["snr_db"] for u in row["units"] if u["unit"] != "layer2.0"]
        assert row["worst_unit"]["snr_db"] < min(others) - 5
    assert "keras in int8 on onnxruntime: layer2.0 (" in printed and "inside it, layer2.0.conv2 (" in printed


def test_bad_precision_requests_are_one_line(capsys):
    for args, said in (
        (["--precision", "int8"], "--precision int8: int8 is judged on a runtime's file: add --runtime onnxruntime"),
        (["--precision", "bf16", "--runtime", "onnxruntime"], "onnxruntime cannot be asked for bf16 here"),
        (["--precision", "fp16", "--runtime", "executorch"], "executorch: this check builds no fp16 file for it"),
        (
            ["--precision", "bf16", "--runtime", "litert"],
            "litert cannot be asked for bf16 here; it takes fp32, fp16, int8",
        ),
        (["--precision", "fp8"], "invalid choice: 'fp8'"),
        (["--precision", "bf16", "--device", "cuda"], "the low-precision pass runs on the CPU in this version"),
    ):
        try:
            code = main(["check", *NARROW, *args])
        except SystemExit as exited:  # argparse's own refusal
            code = exited.code
        err = capsys.readouterr().err
        assert code == 2 and said in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(bool(missing("openvino")), reason="openvino is not installed")
def test_a_runtime_that_computes_in_another_precision_than_asked_is_said_not_judged(monkeypatch):
    from parity.backends.runtimes import openvino_ir

    monkeypatch.setitem(openvino_ir.HINTS, "bf16", "f32")  # as on a CPU without bf16 units: asked bf16, runs f32
    report = judge("bf16", ["openvino"], weights())
    reference, ported = report.rows
    assert reference.skipped.startswith("openvino computes in fp32 when asked for bf16 on this machine (")
    assert ported.skipped.startswith("not judged: the reference (torch) did not run in bf16 on openvino")
    assert report.passed and not reference.units  # said, not failed, and nothing judged


def test_check_precision_on_noise_writes_its_table(tmp_path, capsys):
    out = tmp_path / "check.md"
    narrow = [arg if arg != "64" else "32" for arg in NARROW]
    assert main(["check", *narrow, "--precision", "fp16", "--data", "noise", "--markdown", str(out)]) == 0
    printed, written = capsys.readouterr().out, out.read_text()
    assert "fp16: each model against the float64 truth" in printed and "on 24 seeded noise images" in printed
    assert "seeded input 2x32x32" in printed and "| resnet18 | keras | keras | fp16 |" in written
    assert "fp16: every activation stays within fp16's range" in printed
