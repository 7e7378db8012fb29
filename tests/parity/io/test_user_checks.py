"""What a user brings: `check --weights FILE --input FILE`, and the error messages a new user met."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from parity.cli import main
from parity.io.checkpoints import CheckpointError, infer_spec, load_checkpoint, read_checkpoint, write_checkpoint
from parity.io.weights import WeightMismatchError, random_weights
from parity.spec import make_spec


@pytest.fixture(scope="module")
def spec18_10():
    return make_spec("resnet18", num_classes=10)


@pytest.fixture(scope="module")
def trained_like(spec18_10):
    return random_weights(spec18_10, 5, calibrate=True, size=48)


@pytest.mark.parametrize("extension", [".pth", ".safetensors", ".npz", ".weights.h5", ".keras"])
def test_check_your_own_checkpoint(tmp_path, capsys, spec18_10, trained_like, extension):
    path = write_checkpoint(trained_like, tmp_path / f"mine{extension}", spec18_10)
    args = ["check", "--weights", str(path), "--size", "48", "--batch", "1", "--json", str(tmp_path / "r.json")]
    if extension == ".weights.h5":  # holds no architecture
        assert main(args) == 2
        assert "pass --arch" in capsys.readouterr().err
        args += ["--arch", "resnet18", "--num-classes", "10"]
    assert main(args) == 0, capsys.readouterr()
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] and data["config"]["weights"] == str(path)
    assert [r["arch"] for r in data["results"]] == ["resnet18", "resnet18"]
    assert data["results"][0]["output_shape"] == [1, 10]
    assert data["provenance"]["versions"]["keras"]
    assert str(path) in capsys.readouterr().out


def test_check_input_npy_and_images(tmp_path, capsys, spec18_10, trained_like):
    from PIL import Image

    weights = write_checkpoint(trained_like, tmp_path / "w.safetensors", spec18_10)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "batch.npy", rng.standard_normal((3, 3, 40, 56)).astype(np.float32))
    assert (
        main(
            [
                "check",
                "--weights",
                str(weights),
                "--input",
                str(tmp_path / "batch.npy"),
                "--direction",
                "torch2keras",
                "--json",
                str(tmp_path / "a.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "a.json").read_text())["results"][0]["report"]["input_shape"] == [3, 3, 40, 56]
    images = []
    for name, size in (("a.png", (70, 50)), ("b.jpg", (40, 90))):
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(tmp_path / name)
        images.append(str(tmp_path / name))
    assert (
        main(
            [
                "check",
                "--weights",
                str(weights),
                "--input",
                *images,
                "--size",
                "32",
                "--direction",
                "keras2torch",
                "--json",
                str(tmp_path / "b.json"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "b.json").read_text())["results"][0]["report"]
    assert report["input_shape"] == [2, 3, 32, 32]
    capsys.readouterr()
    np.save(tmp_path / "nhwc.npy", np.zeros((1, 40, 40, 3), np.float32))
    assert main(["check", "--weights", str(weights), "--input", str(tmp_path / "nhwc.npy")]) == 2
    assert "looks NHWC" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(os.urandom(200))
    assert main(["check", "--weights", str(weights), "--input", str(tmp_path / "bad.png")]) == 2
    assert "bad.png: not a readable image" in capsys.readouterr().err


def test_image_preprocessing_is_torchvisions_eval_transform(tmp_path):
    from PIL import Image

    from parity.io.inputs import IMAGENET_MEAN, IMAGENET_STD, load_image

    Image.new("RGB", (300, 200), (255, 0, 128)).save(tmp_path / "flat.png")
    x = load_image(tmp_path / "flat.png", size=224)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    expected = (np.array([255, 0, 128]) / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(x[:, 100, 100], expected, rtol=1e-5)


# Seeds whose bytes make torch's safe unpickler raise UnpicklingError, IndexError, UnicodeDecodeError, KeyError.
@pytest.mark.parametrize("seed", [0, 17, 54, 62])
@pytest.mark.parametrize("extension", [".pth", ".npz"])
def test_random_bytes_are_not_a_checkpoint_and_no_unsafe_advice(tmp_path, extension, seed):
    path = tmp_path / f"noise{extension}"
    path.write_bytes(np.random.default_rng(seed).bytes(4096))
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "not a" in message
    for advice in ("weights_only", "allow_pickle"):
        assert advice not in message


def test_object_arrays_in_npz_are_refused_unpickled(tmp_path):
    np.savez(tmp_path / "o.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="'a' holds pickled Python objects.*not unpickled"):
        read_checkpoint(tmp_path / "o.npz")


def test_inferring_names_the_closest_preset_and_the_offending_keys():
    weights = random_weights(make_spec("resnet50"), 0)
    weights["layer3.2.conv2.weight"] = weights["layer3.2.conv2.weight"][:, :100]
    del weights["layer1.0.bn1.running_mean"]
    with pytest.raises(ValueError) as info:
        infer_spec(weights)
    message = str(info.value)
    assert "closest is resnet50 (torchvision" in message
    assert "layer1.0.bn1.running_mean" in message and "layer3.2.conv2.weight (expected (256, 256, 3, 3)" in message


def test_other_depth_says_which_network_first(tmp_path):
    import resnet_torch

    path = write_checkpoint(random_weights(make_spec("resnet18"), 0), tmp_path / "r18.pth", make_spec("resnet18"))
    model = resnet_torch.resnet50()
    before = model.fc.weight.detach().clone()
    with pytest.raises(WeightMismatchError) as info:
        load_checkpoint(model, path)
    message = str(info.value)
    assert message.startswith(f"{path} holds resnet18 (torchvision, 1000 classes, 3 channels); the model is resnet50")
    assert "165 missing key(s)" in message and "... and 157 more" in message
    assert len(message) < 2000
    assert (model.fc.weight == before).all()


def test_uint8_images_get_one_clear_line_in_both_backends():
    import torch

    import resnet_keras
    import resnet_torch

    with pytest.raises(ValueError, match="expected a float input, got uint8") as info:
        resnet_keras.resnet18()(np.zeros((1, 32, 32, 3), np.uint8))
    assert len(str(info.value).splitlines()) < 10
    with pytest.raises(ValueError, match="expected a float input, got uint8"):
        resnet_torch.resnet18()(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_cli_refuses_bad_flags_naming_them(capsys, tmp_path):
    for argv, flag, text in [
        (["check", "--seed", "-1"], "--seed", "must be >= 0"),
        (["lessons", "--size", "7"], "--size", "must be an even number"),
        (["summary", "--backends", "foo"], "--backends", "unknown backend(s) 'foo'"),
        (["check", "--keras-backend", "theano"], "--keras-backend", "invalid choice"),
    ]:
        with pytest.raises(SystemExit):
            main(argv)
        err = capsys.readouterr().err
        assert flag in err and text in err, err


def test_convert_num_classes_must_match_the_file(tmp_path, capsys):
    spec = make_spec("resnet18")
    src = write_checkpoint(random_weights(spec, 0), tmp_path / "a.npz", spec)
    assert main(["convert", str(src), str(tmp_path / "b.safetensors"), "--num-classes", "10"]) == 2
    err = capsys.readouterr().err
    assert "--num-classes 10, but" in err and "holds 1000 (fc.weight is (1000, 512))" in err
    assert not (tmp_path / "b.safetensors").exists()
    assert main(["convert", str(src), str(tmp_path / "b.safetensors"), "--num-classes", "1000"]) == 0


def test_version_names_every_framework(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("resnet-parity 0.1.0") and "torch 2." in out and "keras 3." in out
    assert "Keras backend tensorflow" in out
    import tomllib

    import parity

    written = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())["project"]["version"]
    assert parity.__version__ == written  # written once, in pyproject.toml


def test_top_level_api_is_lazy():
    from tests.conftest import run_python

    result = run_python(
        "import sys, parity\n"
        "assert callable(parity.compare) and callable(parity.load_checkpoint)\n"
        "assert callable(parity.copy_weights) and callable(parity.assert_parity)\n"
        "assert not {'torch', 'keras', 'tensorflow'} & set(sys.modules), sorted(sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_check_without_float64_and_uncalibrated_says_so(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert (
        main(
            [
                "check",
                "--arch",
                "resnet18",
                "--size",
                "32",
                "--batch",
                "1",
                "--direction",
                "torch2keras",
                "--no-float64",
                "--uncalibrated",
                "--num-classes",
                "7",
                "--json",
                str(path),
            ]
        )
        == 0
    )
    data = json.loads(path.read_text())
    assert data["config"]["float64"] is False and data["config"]["calibrated"] is False
    report = data["results"][0]["report"]
    assert report["float64"] is False and report["tolerance_name"] == "FP32_FIXED[resnet18]"
    assert data["results"][0]["output_shape"] == [1, 7]
    out = " ".join(capsys.readouterr().out.split())
    assert "float64 pass off" in out and "BN uncalibrated" in out


def test_check_weights_of_another_depth_names_both(tmp_path, capsys, spec18_10, trained_like):
    path = write_checkpoint(trained_like, tmp_path / "r18.pth", spec18_10)
    assert main(["check", "--weights", str(path), "--arch", "resnet50"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "holds resnet18 (torchvision, 10 classes, 3 channels); the model is resnet50" in err


def test_a_given_variant_wins_over_a_shape_identical_one(tmp_path):
    from parity.io.checkpoints import read_with_spec

    spec = make_spec("resnet50", "v1", num_classes=4)
    path = write_checkpoint(random_weights(spec, 0), tmp_path / "v1.npz", spec)
    assert read_with_spec(path)[0].variant == "torchvision"  # same shapes: a file cannot tell them apart
    assert read_with_spec(path, variant="v1")[0] == spec
