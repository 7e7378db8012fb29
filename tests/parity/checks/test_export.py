"""parity.checks.export: ONNX files of both backends, checked, atomic, dynamic in batch, within tolerance."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

from parity.checks.check import build_pair, random_input
from parity.checks.compare import run_stages
from parity.checks.export import LAYOUT_KEY, export_onnx, input_layout, onnx_session, op_histogram, run_onnx
from parity.cli import main
from parity.core import tolerances
from parity.io.weights import copy_weights, random_weights, set_weights
from parity.spec import make_spec


@pytest.fixture(scope="module")
def exported18(tmp_path_factory, spec18):
    """resnet18 with seeded weights, both backends, exported once (batch 2, 64x64)."""
    folder = tmp_path_factory.mktemp("onnx")
    t, k = build_pair(spec18)
    set_weights(t, random_weights(spec18, 0))
    copy_weights(t, k)
    files = {"torch-onnx": folder / "t.onnx", "keras-onnx": folder / "k.onnx"}
    export_onnx(t, files["torch-onnx"], height=64)
    export_onnx(k, files["keras-onnx"], nchw=True, height=64)  # a drop-in twin of the torch file
    result = {"files": {label: str(path) for label, path in files.items()}}
    result["ops"] = {label: op_histogram(path) for label, path in files.items()}
    return t, k, folder, result


def test_each_file_computes_what_both_models_do(exported18, spec18):
    t, k, _, result = exported18
    x = random_input(spec18, 2, 64, 64, 0)
    outputs = {"torch": run_stages(t, x)["logits"], "keras": run_stages(k, x)["logits"]}
    outputs.update({label: run_onnx(onnx_session(path), x) for label, path in result["files"].items()})
    for label, logits in outputs.items():
        rel = np.abs(logits - outputs["torch"]).max() / np.abs(outputs["torch"]).max()
        assert rel <= tolerances.FP32_CPU, (label, rel)
        assert rel > 0 or label == "torch"  # real, separate runs


def test_files_pass_checker_and_name_io(exported18):
    *_, folder, result = exported18
    for path in result["files"].values():
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        (inp,), (out,) = model.graph.input, model.graph.output
        assert (inp.name, out.name) == ("input", "logits")
        dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
        assert dims[0] == "batch" and dims[1] == 3  # NCHW in both (Keras exported with nchw=True)
        assert {p.key: p.value for p in model.metadata_props}[LAYOUT_KEY] == "NCHW"


@pytest.mark.parametrize(
    "batch, size", [(1, (64, 64)), (5, (64, 64)), (3, (97, 131)), (1, (160, 160)), (2, (224, 224)), (1, (33, 40))]
)
def test_any_batch_and_size(exported18, spec18, batch, size):
    """Both files, exported at 2x64x64, run at other batches and sizes (torch: batch, H, W symbolic)."""
    t, k, folder, result = exported18
    x = random_input(spec18, batch, *size, batch)
    reference = run_stages(t, x)["logits"]
    for path in result["files"].values():
        logits = run_onnx(onnx_session(path), x)
        assert logits.shape == (batch, 1000)
        rel = np.abs(logits - reference).max() / np.abs(reference).max()
        assert rel <= tolerances.FP32_CPU, (path, batch, size, rel)


def test_op_histograms_show_the_differences(exported18):
    *_, result = exported18
    torch_ops, keras_ops = result["ops"]["torch-onnx"], result["ops"]["keras-onnx"]
    assert torch_ops["Conv"] == keras_ops["Conv"] == 20
    assert "BatchNormalization" not in torch_ops and "BatchNormalization" not in keras_ops  # folded
    # Keras' explicit max-pool padding is folded into the MaxPool (exact after ReLU; see fold_pool_padding)
    assert "Pad" not in keras_ops and "Pad" not in torch_ops and keras_ops["MaxPool"] == 1
    assert torch_ops["Gemm"] == 1 and keras_ops["MatMul"] == 1  # fc: Gemm vs MatMul + Add
    assert keras_ops.get("Transpose", 0) == 0  # the NCHW wrapper's transpose is folded away


def test_keras_nhwc_export(tmp_path, exported18, spec18):
    t, k, *_ = exported18
    path = export_onnx(k, tmp_path / "k.onnx", height=64)
    assert os.listdir(tmp_path) == ["k.onnx"]  # nothing else from the exporter (tf2onnx's zip is inlined)
    session = onnx_session(path)
    assert input_layout(session) == "NHWC"
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims][3] == 3
    x = random_input(spec18, 3, 48, 56, 1)  # H and W stay dynamic in Keras graphs
    reference = run_stages(t, x)["logits"]
    rel = np.abs(run_onnx(session, x) - reference).max() / np.abs(reference).max()
    assert rel <= tolerances.FP32_CPU
    assert op_histogram(path)["Transpose"] == 1  # NHWC in, NCHW convs inside


def test_occupied_path_is_not_overwritten(tmp_path, exported18):
    t, *_ = exported18
    target = tmp_path / "busy.onnx"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="busy.onnx exists; pass --force"):
        export_onnx(t, target, height=32)
    assert target.read_bytes() == b"precious"
    assert main(["export", "--arch", "resnet18", "--backend", "torch", "--out", str(target), "--size", "32"]) == 2
    assert target.read_bytes() == b"precious"


def test_unwritable_path_fails_clearly(tmp_path, exported18, capsys):
    t, *_ = exported18
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_onnx(t, tmp_path / "no" / "such" / "dir" / "m.onnx")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["export", "--arch", "resnet18", "--backend", "keras", "--out", str(blocker / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_export_leaves_only_the_file(tmp_path, exported18):
    """The torch exporter writes its weights to a `.data` side file; none may remain (Keras: the NHWC test)."""
    t, k, *_ = exported18
    export_onnx(t, tmp_path / "t.onnx", height=32)
    assert os.listdir(tmp_path) == ["t.onnx"]
    assert onnx.load(str(tmp_path / "t.onnx"), load_external_data=False).graph.initializer[0].data_location == 0


def test_checker_failure_leaves_nothing(tmp_path, exported18, monkeypatch):
    t, *_ = exported18

    def reject(*args, **kwargs):
        raise onnx.checker.ValidationError("forced")

    monkeypatch.setattr(onnx.checker, "check_model", reject)
    with pytest.raises(onnx.checker.ValidationError):
        export_onnx(t, tmp_path / "m.onnx", height=32)
    assert os.listdir(tmp_path) == []


def test_same_padding_torch_export_keeps_its_size(tmp_path):
    """TF 'same' pads depend on the size's parity: such a graph stays static rather than go wrong."""
    import resnet_torch

    model = resnet_torch.resnet18(variant="same_bias_conv_shortcut")
    path = export_onnx(model, tmp_path / "same.onnx", height=64)
    session = onnx_session(path)
    x = random_input(model.spec, 1, 64, 64, 0)
    reference = run_stages(model, x)["logits"]
    assert np.abs(run_onnx(session, x) - reference).max() <= 1e-5 * np.abs(reference).max()
    with pytest.raises(Exception, match="(?i)dimension|shape|Got: 97"):
        run_onnx(session, random_input(model.spec, 1, 97, 97, 0))


def test_failed_export_leaves_nothing(tmp_path, exported18, monkeypatch):
    import torch

    t, *_ = exported18

    def broken_export(model, args, f, **kwargs):
        open(f, "wb").write(b"half an onnx file")
        open(str(f) + ".data", "wb").write(b"half its weights")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_onnx(t, tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_interrupted_export_leaves_nothing(tmp_path, exported18, monkeypatch):
    import torch

    t, *_ = exported18

    def interrupted(model, args, f, **kwargs):
        open(str(f) + ".data", "wb").write(b"weights")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.onnx, "export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(t, tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_corrupt_file_is_refused(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ValueError, match="bad.onnx is not a loadable ONNX model"):
        onnx_session(path)
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        onnx_session(tmp_path / "none.onnx")


def test_bad_export_arguments(tmp_path, exported18):
    t, *_ = exported18
    with pytest.raises(ValueError, match="torch model exports NCHW only"):
        export_onnx(t, tmp_path / "m.onnx", nchw=False)
    with pytest.raises(ValueError, match="opset must be an int >= 13, got 7"):
        export_onnx(t, tmp_path / "m.onnx", opset=7)
    assert os.listdir(tmp_path) == []


def test_cli_export_needs_force_to_replace(tmp_path, capsys):
    out = tmp_path / "r18.onnx"
    out.write_bytes(b"stale")
    args = [
        "export",
        "--arch",
        "resnet18",
        "--backend",
        "keras",
        "--nchw",
        "--out",
        str(out),
        "--size",
        "32",
        "--seed",
        "1",
        "--num-classes",
        "10",
    ]
    assert main(args) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    assert "wrote" in capsys.readouterr().err
    session = onnx_session(out)
    dims = onnx.load(str(out)).graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 10]
    assert input_layout(session) == "NCHW"


def test_onnxruntime_rows_of_a_bottleneck_resnet50d_with_eca():
    # Every bottleneck, stride and shortcut of resnet50 at a quarter of its widths: the same graph for
    # the exporters at 1/16 of the weights, in a fraction of the time. As ResNet-D (timm's resnet50d: deep
    # stem, avg-down shortcuts) at an odd size, so the average pool's ceil-mode edge goes through both
    # exporters too (the plain stem and projections are exported by the resnet18 test), with ECA in every
    # block (timm's ecaresnet50d): the one 1-D conv any network exports.
    from parity.checks.runtimes import runtime_rows

    spec = make_spec("ecaresnet50d", widths=(16, 32, 64, 128), stem_width=16, deep_stem_width=8)
    t, k = build_pair(spec)
    set_weights(t, random_weights(spec, 0, calibrate=True, size=(65, 63)))
    copy_weights(t, k)
    rows = runtime_rows(["onnxruntime"], t, [t, k], random_input(spec, 2, 65, 63, 0))
    assert [(r.source, r.runtime) for r in rows] == [("torch", "onnxruntime"), ("keras", "onnxruntime")]
    for row in rows:  # each file against the torch model's float64 output, by the fp32 rule
        assert row.passed and row.diff.ratio <= tolerances.FP32_NOISE_MULTIPLE, row.to_dict()
        assert row.precision == "fp32" and row.ops["Conv"] > 0 and not row.wrong_probes


@pytest.mark.parametrize("source, folds", [("Relu", True), ("Neg", False)])
def test_pool_padding_folds_only_after_relu(source, folds):
    from onnx import TensorProto, helper, numpy_helper

    from parity.checks.export import fold_pool_padding

    nodes = [
        helper.make_node(source, ["x"], ["a"]),
        helper.make_node("Pad", ["a", "pads"], ["p"]),
        helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3], strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 7, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = np.random.default_rng(0).standard_normal((1, 2, 7, 7)).astype(np.float32)
    import onnxruntime as ort

    before = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    assert fold_pool_padding(model) == int(folds)
    onnx.checker.check_model(model)
    after = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    assert np.array_equal(before, after)
    assert [n.op_type for n in model.graph.node].count("Pad") == (0 if folds else 1)


# The extended tier: every export test runs the lean export; this proves it equal to Keras' own call once per
# Keras / tf2onnx version (CI pins both), 12 s.
@pytest.mark.extended
def test_lean_keras_export_is_keras_default_export(tmp_path):
    """`_lean_tf2onnx` (large_model, fresh NodeProtos) writes what Keras' own tf2onnx call writes."""
    import collections

    import keras
    import onnxruntime as ort

    from parity.backends.keras import NCHWInput
    from parity.checks.export import fold_pool_padding

    spec = make_spec("resnet50", widths=(8, 16, 32, 64), stem_width=8)  # every bottleneck kind, small
    t, k = build_pair(spec)
    set_weights(t, random_weights(spec, 0, calibrate=True, size=(64, 64)))
    copy_weights(t, k)
    lean = onnx.load(str(export_onnx(k, tmp_path / "lean.onnx", nchw=True, height=64)))
    signature = [keras.InputSpec(shape=(None, 3, None, None), dtype="float32", name="input")]
    NCHWInput(k).export(
        str(tmp_path / "plain.onnx"), format="onnx", input_signature=signature, opset_version=18, verbose=False
    )
    plain = onnx.load(str(tmp_path / "plain.onnx"))
    fold_pool_padding(plain)  # what export_onnx does after either conversion

    def weights(model):
        constants = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
        return [constants[name] for node in model.graph.node for name in node.input if name in constants]

    assert collections.Counter(n.op_type for n in lean.graph.node) == collections.Counter(
        n.op_type for n in plain.graph.node
    )
    assert len(weights(lean)) == len(weights(plain)) > 50
    assert all(np.array_equal(a, b) for a, b in zip(weights(lean), weights(plain)))  # same folding, bit for bit
    x = random_input(spec, 3, 80, 72, 0)
    outputs = [
        ort.InferenceSession(m.SerializeToString()).run(None, {m.graph.input[0].name: x})[0] for m in (lean, plain)
    ]
    assert np.array_equal(*outputs)


def test_keras_export_failure_leaves_nothing_and_unpatches(tmp_path, exported18, monkeypatch):
    """A tf2onnx failure or Ctrl-C mid-conversion: no file, and tf2onnx and NumPy are as they were."""
    from tf2onnx import convert, graph

    _, k, *_ = exported18
    for error in (RuntimeError("converter crashed"), KeyboardInterrupt()):

        def broken(*args, output_path=None, error=error, **kwargs):
            open(output_path, "wb").write(b"half a zip")
            raise error

        monkeypatch.setattr(convert, "from_function", broken)
        before = (graph.Node.update_proto, convert.from_function, hasattr(np, "product"))
        with pytest.raises(type(error)):
            export_onnx(k, tmp_path / "k.onnx", height=32)
        assert os.listdir(tmp_path) == []
        assert (graph.Node.update_proto, convert.from_function, hasattr(np, "product")) == before


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_export_precision_writes_onnxruntimes_own_file(tmp_path, precision, capsys):
    import onnx

    from parity.backends.runtimes.ort import graph_precision, session

    out = tmp_path / f"m.{precision}.onnx"
    args = ["export", "--backend", "keras", "--arch", "resnet18", "--size", "32", "--seed", "0", "--num-classes", "10"]
    args += ["--set", "widths=8,16,32,64", "--set", "stem_width=8", "--set", "layers=1,1,1,1"]
    assert main(args + ["--out", str(out), "--precision", precision]) == 0
    assert f"wrote {out} ({precision}, " in capsys.readouterr().err
    assert graph_precision(out)[0] == precision and [p.name for p in tmp_path.iterdir()] == [out.name]
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["resnet_parity.layout"] == "NHWC"  # the layout it takes, kept through the conversion
    assert session(out).run(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 10)
    assert main(args + ["--out", str(tmp_path / "b.onnx"), "--precision", "bf16"]) == 2
    assert "--precision bf16: ONNX files are written in fp32, fp16 or int8 here" in capsys.readouterr().err
