"""Model folders: transformers' `save_pretrained` folders (tests/fixtures/hf, made by transformers 5.24.0) and
timm's Hub folders (tests/fixtures/timm/resnet50d_tiny_hub, made by timm 1.0.31's save_for_hf) load with no
flags into both backends and reproduce the library's own outputs; bad folders are refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import parity
from parity.backends import adapter_named
from parity.checks.diff import StageDiff
from parity.cli import main
from parity.core import tolerances
from parity.core.errors import CheckpointError
from parity.io.checkpoints import read_with_spec
from parity.io.libraries import read_library

FIXTURES = Path(__file__).parents[2] / "fixtures"
HF = FIXTURES / "hf"
HF_OUTPUTS = np.load(HF / "hf_outputs.npz")
TIMM_HUB = FIXTURES / "timm" / "resnet50d_tiny_hub"


def _reproduces(model, side, x, reference64, reference32, output="logits"):
    """float64 to the port tolerance, fp32 within the fp32 verdict's multiple of the library's own rounding."""
    with side.float64(model) as model64:
        assert StageDiff.measure(output, reference64, side.run_stages(model64, x)[output], tolerances.FP64).passed
    noise = StageDiff.measure(output, reference64, reference32, 1.0).max_rel
    ours = StageDiff.measure(output, reference64, side.run_stages(model, x)[output], 1.0).max_rel
    assert ours <= max(tolerances.FP32_NOISE_MULTIPLE * noise, tolerances.FP32_FLOOR), (ours, noise)


@pytest.mark.parametrize(
    "folder, backends, expected",
    [
        ("resnet50-narrow", ("torch", "keras"), ("resnet50 (widths 4-8-16-32, stem 16)", "v1.5", 3, 3)),
        ("resnet18-gray", ("torch", "keras"), ("resnet18 (widths 8-16-32-64, stem 8)", "v1.5", 4, 1)),
        ("resnet26-v1", ("torch",), ("resnet (bottleneck 2-2-2-2)", "v1", 6, 3)),  # downsample_in_bottleneck
    ],
)
def test_transformers_folders_reproduce_transformers(folder, backends, expected):
    spec, _, recorded = read_library(HF / folder)
    assert (spec.name, spec.stride_on, spec.num_classes, spec.in_channels) == expected
    x, ref64, ref32 = (HF_OUTPUTS[f"{folder}/{k}"] for k in ("input", "fp64", "fp32"))
    for backend in backends:
        side = adapter_named(backend)
        _reproduces(parity.load_model(HF / folder, backend=backend), side, x, ref64, ref32)
    if folder == "resnet50-narrow":
        assert recorded["labels"] == ["cat", "dog", "bird"]  # id2label, in index order


def test_a_folders_weights_file_reads_its_config(tmp_path):
    # model.safetensors inside the folder: config.json says the stride is on the first 1x1 (v1) ...
    assert read_with_spec(HF / "resnet26-v1" / "model.safetensors")[0].stride_on == "v1"
    # ... which the weights alone cannot say: moved out of the folder, they read as torchvision's v1.5.
    shutil.copy(HF / "resnet26-v1" / "model.safetensors", tmp_path / "model.safetensors")
    alone, _ = read_with_spec(tmp_path / "model.safetensors")
    assert (alone.stride_on, alone.layers, alone.widths) == ("v1.5", (2, 2, 2, 2), (4, 8, 16, 32))


def test_timm_hub_folder(tmp_path):
    spec, _, recorded = read_library(TIMM_HUB)
    assert (spec.name, spec.num_classes) == ("resnet50d (widths 4-8-16-32, stem 8-8-16)", 10)
    assert recorded["mean"] == [0.485, 0.456, 0.406]
    outputs = np.load(FIXTURES / "timm" / "timm_outputs.npz")
    x, ref64, ref32 = (outputs[f"resnet50d_tiny/{k}"] for k in ("input", "fp64", "fp32"))
    _reproduces(parity.load_model(TIMM_HUB, backend="keras"), adapter_named("keras"), x, ref64, ref32)
    report = tmp_path / "check.json"
    assert (
        main(["check", "--weights", str(HF / "resnet18-gray"), "--size", "65", "--quiet", "--json", str(report)]) == 0
    )
    assert all(row["passed"] for row in json.loads(report.read_text())["results"])


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_bad_folders_are_refused_naming_the_file_and_key(tmp_path):
    no_weights = _copy(HF / "resnet18-gray", tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no-weights: no weights \(model.safetensors or pytorch_model.bin\)"):
        read_library(no_weights)
    vit = _copy(HF / "resnet18-gray", tmp_path / "vit")
    _edit_config(vit, model_type="vit")
    with pytest.raises(CheckpointError, match=r'vit/config.json: "model_type" is \'vit\', not "resnet"'):
        read_library(vit)
    sizes = _copy(HF / "resnet18-gray", tmp_path / "sizes")
    _edit_config(sizes, hidden_sizes=[8, 16, 32, 128])
    with pytest.raises(Exception, match=r"sizes: config.json describes .*layer4.0.conv1.weight") as info:
        read_library(sizes)
    assert "\n" not in str(info.value).strip()
    missing = _copy(HF / "resnet18-gray", tmp_path / "missing")
    from safetensors.numpy import load_file, save_file

    state = load_file(str(missing / "model.safetensors"))
    del state["resnet.encoder.stages.2.layers.1.layer.0.convolution.weight"]
    save_file(state, str(missing / "model.safetensors"))
    with pytest.raises(Exception, match=r"missing: config.json describes .*missing key.*layer3.1.conv1.weight"):
        read_library(missing)
    blur = _copy(TIMM_HUB, tmp_path / "blur")
    _edit_config(blur, architecture="resnetblur50")
    with pytest.raises(CheckpointError, match=r"blur/config.json: \"architecture\" is 'resnetblur50', a timm model"):
        read_library(blur)
    assert main(["check", "--weights", str(vit), "--quiet"]) == 2  # one line from the command too


def test_predict_takes_a_folder_with_its_labels(tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(image)
    assert main(["predict", "--weights", str(HF / "resnet50-narrow"), "--backend", "torch", str(image), "--quiet"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"{image}: ") and {"cat", "dog", "bird"} <= set(line.replace(",", " ").split())
    assert main(["predict", "--weights", str(TIMM_HUB), "--backend", "torch", str(image), "--quiet"]) == 2
    assert "names no class for each of the 10 outputs" in capsys.readouterr().err


def test_check_input_uses_the_folders_normalisation(tmp_path, monkeypatch):
    from PIL import Image

    import parity.io.inputs as inputs

    image = tmp_path / "image.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(image)
    folder = _copy(TIMM_HUB, tmp_path / "half")
    config = json.loads((folder / "config.json").read_text())
    config["pretrained_cfg"].update(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    (folder / "config.json").write_text(json.dumps(config))
    seen = {}
    real = inputs.load_inputs
    monkeypatch.setattr(inputs, "load_inputs", lambda *a, **k: seen.setdefault("x", real(*a, **k)))
    args = ["--size", "64", "--no-float64", "--direction", "torch2keras", "--quiet"]
    assert main(["check", "--weights", str(folder), "--input", str(image), *args]) == 0
    assert np.allclose(seen["x"], (128 / 255 - 0.5) / 0.5, atol=1e-6)  # not ImageNet's (x - 0.485) / 0.229
