"""parity.io.checkpoints: five formats, bit-exact round trips, safe loading, clear refusals."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

import resnet_keras
import resnet_torch
from parity.checks.compare import compare, run_stages
from parity.cli import main
from parity.io.checkpoints import (
    CheckpointError,
    convert,
    infer_spec,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    write_checkpoint,
)
from parity.io.weights import WeightMismatchError, get_weights, random_weights
from parity.spec import make_spec

EXTENSIONS = [".pt", ".pth", ".safetensors", ".npz", ".weights.h5", ".keras"]


@pytest.fixture(scope="module")
def weights18(spec18):
    return random_weights(spec18, 11)


def assert_bit_identical(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype == np.float32, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("extension", EXTENSIONS)
def test_round_trip_every_format(tmp_path, spec18, weights18, extension):
    path = write_checkpoint(weights18, tmp_path / f"w{extension}", spec18)
    assert_bit_identical(read_checkpoint(path, spec18), weights18)


def test_chain_through_every_format(tmp_path, spec18, weights18):
    src = write_checkpoint(weights18, tmp_path / "start.npz", spec18)
    for i, extension in enumerate(EXTENSIONS):
        dst = tmp_path / f"step{i}{extension}"
        convert(src, dst, arch="resnet18" if src.name.endswith(".weights.h5") else None)
        src = dst
    assert_bit_identical(read_checkpoint(src, spec18), weights18)


def test_torchvision_checkpoint_loads_into_both_backends(tmp_path, spec18, weights18):
    # A torchvision state dict as torchvision saves it: tensors, num_batches_tracked included.
    state = {k: torch.from_numpy(v) for k, v in weights18.items()}
    state.update(
        {
            k.replace("running_var", "num_batches_tracked"): torch.tensor(123)
            for k in weights18
            if k.endswith("running_var")
        }
    )
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(state, path)
    t, k = resnet_torch.ResNet(spec18), resnet_keras.ResNet(spec18)
    load_checkpoint(t, path)
    load_checkpoint(k, path)
    report = compare(t, k, np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32))
    assert report.passed, report.to_json()
    written = tmp_path / "back.pth"
    save_checkpoint(k, written)
    reloaded = torch.load(written, weights_only=True)
    fresh = resnet_torch.ResNet(spec18)
    fresh.load_state_dict(reloaded, strict=True)  # what torchvision's load_state_dict accepts
    assert torch.equal(fresh.fc.weight, t.fc.weight)


def test_wrapped_and_ddp_state_dicts(tmp_path, spec18, weights18):
    wrapped = {"state_dict": {f"module.{k}": torch.from_numpy(v) for k, v in weights18.items()}, "epoch": 90}
    torch.save(wrapped, tmp_path / "ckpt.pt")
    assert_bit_identical(read_checkpoint(tmp_path / "ckpt.pt"), weights18)


def test_pickled_code_is_never_executed(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"conv1.weight": Payload()}, handle)
    torch.save({"conv1.weight": Payload()}, tmp_path / "evil_zip.pt")  # torch 2.13: "unsupported GLOBAL posix.system"
    for name in ("evil.pt", "evil_zip.pt"):
        with pytest.raises(CheckpointError, match=f"{name} is not a PyTorch checkpoint") as info:
            read_checkpoint(tmp_path / name)
        assert not (tmp_path / "pwned").exists()
        message = str(info.value)
        assert "weights_only" not in message
        assert "it holds code: a pickled call to posix.system" in message and "so nothing ran" in message


def test_a_plain_pickle_is_one_line_without_torchs_warning(tmp_path):
    """torch printed its UserWarning about the pickle protocol before the error line (a fresh process: pytest
    would catch the warning itself)."""
    from tests.conftest import run_python

    with open(tmp_path / "plain.pth", "wb") as handle:
        pickle.dump({"conv1.weight": np.zeros((2, 2), np.float32)}, handle, protocol=4)
    done = run_python(
        f"import sys\nfrom parity.cli import main\nsys.exit(main(['check', '--weights', {str(tmp_path / 'plain.pth')!r}]))"
    )
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1, done.stderr
    assert "plain.pth is not a PyTorch checkpoint of tensors" in err[0]


@pytest.mark.parametrize("extension", [".pt", ".safetensors", ".npz", ".weights.h5", ".keras"])
def test_truncated_file_is_refused_and_model_unchanged(tmp_path, spec18, weights18, extension):
    good = write_checkpoint(weights18, tmp_path / f"good{extension}", spec18)
    bad = tmp_path / f"bad{extension}"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    model = resnet_torch.ResNet(spec18)
    before = get_weights(model)
    with pytest.raises(CheckpointError, match=f"bad{extension}"):
        load_checkpoint(model, bad)
    assert_bit_identical(get_weights(model), before)


def test_other_depth_is_refused_with_names(tmp_path, weights18):
    path = write_checkpoint(weights18, tmp_path / "r18.safetensors", make_spec("resnet18"))
    model = resnet_keras.resnet34()
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    before = run_stages(model, x)["logits"]
    with pytest.raises(WeightMismatchError) as info:
        load_checkpoint(model, path)
    assert "layer1.2.conv1.weight" in str(info.value) and "missing" in str(info.value)
    np.testing.assert_array_equal(run_stages(model, x)["logits"], before)


def test_mis_shaped_tensor_is_refused(tmp_path, spec18, weights18):
    broken = dict(weights18)
    broken["layer3.0.bn1.running_mean"] = np.zeros(7, np.float32)
    np.savez(tmp_path / "broken.npz", **broken)
    model = resnet_torch.ResNet(spec18)
    with pytest.raises(WeightMismatchError, match=r"layer3.0.bn1.running_mean \(expected \(256,\), got \(7,\)\)"):
        load_checkpoint(model, tmp_path / "broken.npz")
    with pytest.raises(WeightMismatchError, match="layer3.0.bn1.running_mean"):
        convert(tmp_path / "broken.npz", tmp_path / "out.pt", arch="resnet18")
    assert not (tmp_path / "out.pt").exists()


def test_other_variant_is_refused(tmp_path, spec18):
    other = resnet_keras.ResNet(make_spec("resnet18", "keras_applications"))  # biased convs
    keras_file = save_checkpoint(other, tmp_path / "ka.keras")
    with pytest.raises(
        WeightMismatchError, match=r"holds resnet18 \(keras_applications.*the model is resnet18 \(torchvision"
    ):
        load_checkpoint(resnet_torch.ResNet(spec18), keras_file)
    narrow = make_spec("resnet18", widths=(4, 8, 16, 32), stem_width=4)
    eps = save_checkpoint(resnet_keras.ResNet(narrow.replace(bn_eps=1e-3)), tmp_path / "eps.keras")
    with pytest.raises(CheckpointError, match=r"eps.keras holds resnet18 .*expected resnet18 "):  # the same shapes
        load_checkpoint(resnet_torch.ResNet(narrow), eps)
    npz_file = save_checkpoint(other, tmp_path / "ka.npz")
    with pytest.raises(WeightMismatchError, match=r"unexpected key\(s\): conv1.bias, layer1.0.conv1.bias"):
        load_checkpoint(resnet_torch.ResNet(spec18), npz_file)


def test_unknown_format_and_missing_file(tmp_path, spec18):
    with pytest.raises(ValueError, match=r"model.ckpt: unknown checkpoint format; use one of"):
        read_checkpoint(tmp_path / "model.ckpt")
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        read_checkpoint(tmp_path / "none.pt")
    with pytest.raises(ValueError, match=r"\.weights\.h5 file holds no architecture"):
        (tmp_path / "w.weights.h5").write_bytes(b"x")
        read_checkpoint(tmp_path / "w.weights.h5")


def test_infer_spec(spec18, weights18):
    assert infer_spec(weights18) == spec18
    ka = make_spec("resnet101", "keras_applications", num_classes=5, in_channels=1)
    assert infer_spec(random_weights(ka, 0)) == ka
    with pytest.raises(
        ValueError,
        match=r"no ResNet the spec describes has exactly these 103 keys and shapes; the closest is resnet18 \(torchvision\).*extra.weight",
    ):
        infer_spec({**weights18, "extra.weight": np.zeros(1)})


@pytest.mark.parametrize(
    "arch, overrides",
    [
        ("resnet50d", {}),
        ("resnext101_64x4d", {"num_classes": 10}),
        ("wide_resnet50_2", {"in_channels": 1}),
        ("resnet50v2", {}),  # keras.applications' layout: biased stem, projection and last convs
        ("resnet18d", {"num_classes": 0}),  # timm's num_classes=0: no fc
    ],
)
def test_infer_spec_names_the_family(arch, overrides):
    spec = make_spec(arch, **overrides)
    shapes = spec.canonical_shapes()
    found = infer_spec({key: np.zeros(shape, np.float32) for key, shape in shapes.items()})
    assert found.name == arch and found.canonical_shapes() == shapes


def test_infer_spec_reads_any_depth_and_width():
    # timm's resnet26 at a quarter width, grouped, with a deep stem: no preset, read off the keys.
    spec = make_spec("resnet26", widths=(16, 32, 64, 128), groups=4, width_per_group=16, stem="deep", num_classes=7)
    found = infer_spec({k: np.zeros(s, np.float32) for k, s in spec.canonical_shapes().items()})
    assert (found.layers, found.widths, found.groups, found.width_per_group, found.stem) == (
        (2, 2, 2, 2),
        (16, 32, 64, 128),
        4,
        16,
        "deep",
    )
    assert found.variant == "inferred" and found.canonical_shapes() == spec.canonical_shapes()


def test_cli_convert(tmp_path, spec18, weights18, capsys):
    src = write_checkpoint(weights18, tmp_path / "a.pt", spec18)
    dst = tmp_path / "b.safetensors"
    assert main(["convert", str(src), str(dst)]) == 0
    assert "resnet18" in capsys.readouterr().err
    assert_bit_identical(read_checkpoint(dst), weights18)
    dst.write_bytes(b"keep me")
    assert main(["convert", str(src), str(dst)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert dst.read_bytes() == b"keep me"
    assert main(["convert", str(src), str(tmp_path / "c.weights.h5"), "--arch", "resnet18"]) == 0
    assert main(["convert", str(src), str(tmp_path / "d.onnx")]) == 2
    assert "unknown checkpoint format" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["a.pt", "b.safetensors", "c.weights.h5"]
