"""Files timm wrote (tests/fixtures/timm, made by timm 1.0.31 itself; see make_timm_fixtures.py) load with no
flags into both backends and reproduce timm's own outputs: in float64 to the port tolerance, in fp32 within
the fp32 verdict's multiple of timm's own fp32 rounding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import parity
from parity.backends import adapter_named
from parity.checks.diff import StageDiff
from parity.cli import main
from parity.core import tolerances
from parity.io.checkpoints import read_source, read_with_spec

FIXTURES = Path(__file__).parents[2] / "fixtures" / "timm"
OUTPUTS = np.load(FIXTURES / "timm_outputs.npz")

FILES = {
    # file: (inferred name, classes, in channels)
    "resnet50d_tiny.pth": ("resnet50d (widths 4-8-16-32, stem 8-8-16)", 10, 3),
    "resnet26_tiny.safetensors": ("resnet26 (widths 4-8-16-32)", 7, 3),
    "resnet18d_tiny_gray.pth": ("resnet18d (widths 4-8-16-32, stem 4-4-8)", 3, 1),
    "resnext_tiny_headless.safetensors": ("resnet (bottleneck 1-2-1-1, groups 4)", 0, 3),
    # timm's squeeze-excitation, ECA and tiered-stem families (each also a Hub folder, `HUBS`)
    "seresnet18_tiny.pth": ("seresnet18 (widths 4-8-16-32)", 5, 3),
    "seresnet50_tiny.safetensors": ("seresnet50 (widths 4-8-16-32)", 6, 3),
    "seresnext50_32x4d_tiny.pth": ("seresnext50_32x4d (widths 16-16-16-16)", 4, 3),
    "ecaresnet50d_tiny.safetensors": ("ecaresnet50d (widths 4-8-16-32, stem 8-8-16)", 7, 3),
    "resnet26t_tiny.pth": ("resnet26t (widths 4-8-16-32, stem 6-8-16)", 3, 3),
    "resnet50t_tiny_gray_headless.safetensors": ("resnet50t (widths 4-8-16-32, stem 6-8-16)", 0, 1),
}
HUBS = [name for name in FILES if (FIXTURES / f"{name.split('.')[0]}_hub").is_dir()]
"""The networks timm also wrote as Hub folders (config.json + model.safetensors, `save_for_hf`)."""


@pytest.mark.parametrize("name", list(FILES))
def test_the_file_says_what_it_is(name):
    spec, _ = read_with_spec(FIXTURES / name)
    assert (spec.name, spec.num_classes, spec.in_channels) == FILES[name]
    assert spec.variant == "inferred"


@pytest.mark.parametrize("name", HUBS)
def test_a_hub_folder_says_what_it_is_and_holds_the_state_dict(name):
    folder = FIXTURES / f"{name.split('.')[0]}_hub"
    spec, weights, recorded = read_source(folder)
    assert (spec.name, spec.num_classes, spec.in_channels) == FILES[name] and spec.variant == "timm"
    assert spec.preset == json.loads((folder / "config.json").read_text())["architecture"]
    _, state = read_with_spec(FIXTURES / name)
    assert all(np.array_equal(weights[k], state[k]) for k in state) and recorded["mean"]


@pytest.mark.parametrize("backend", ["torch", "keras"])
@pytest.mark.parametrize("source", [*FILES, "seresnet50_tiny_hub"])  # a Hub folder holds its file's weights (above)
def test_both_backends_reproduce_timm(source, backend):
    stem = source.split(".")[0].removesuffix("_hub")
    x, timm64, timm32 = (OUTPUTS[f"{stem}/{k}"] for k in ("input", "fp64", "fp32"))
    side = adapter_named(backend)
    model = parity.load_model(FIXTURES / source, backend=backend)
    output = model.spec.output_name
    with side.float64(model) as model64:
        ours64 = side.run_stages(model64, x)[output]
    assert StageDiff.measure(output, timm64, ours64, tolerances.FP64).passed
    noise = StageDiff.measure(output, timm64, timm32, 1.0).max_rel  # timm's own fp32 rounding
    ours32 = StageDiff.measure(output, timm64, side.run_stages(model, x)[output], 1.0).max_rel
    assert ours32 <= max(tolerances.FP32_NOISE_MULTIPLE * noise, tolerances.FP32_FLOOR), (ours32, noise)


def test_check_passes_on_a_timm_file_with_no_flags(tmp_path, capsys):
    report = tmp_path / "check.json"
    args = [
        "check",
        "--weights",
        str(FIXTURES / "resnet50d_tiny.pth"),
        "--size",
        "65",
        "--quiet",
        "--json",
        str(report),
    ]
    assert main(args) == 0
    assert capsys.readouterr().out.count("PASS") == 2
    rows = json.loads(report.read_text())["results"]
    assert {row["arch"] for row in rows} == {"resnet50d (widths 4-8-16-32, stem 8-8-16)"}
    assert all(row["passed"] for row in rows)


@pytest.mark.parametrize(
    "name, layer",
    [
        ("seresnet50_tiny.safetensors", "layer2.0.se.fc2"),  # the excitation conv inside an SE module
        ("ecaresnet50d_tiny.safetensors", "layer3.1.se.conv"),  # ECA's 1-D conv across the channels
    ],
)
def test_one_channel_scaled_inside_the_attention_is_named(name, layer):
    from parity.checks.compare import compare
    from parity.io.weights import set_weights

    spec, weights = read_with_spec(FIXTURES / name)
    stem = name.split(".")[0]
    torch_model = parity.load_model(FIXTURES / name, backend="torch")
    keras_model = adapter_named("keras").build(spec)
    broken = {**weights, f"{layer}.weight": weights[f"{layer}.weight"].copy()}
    broken[f"{layer}.weight"][0] *= 1.0001
    set_weights(keras_model, broken)
    report = compare(torch_model, keras_model, OUTPUTS[f"{stem}/input"])
    assert not report.passed
    assert (report.first_wrong_block, report.first_wrong_layer) == (layer.rsplit(".", 2)[0], layer)


@pytest.mark.parametrize("name", HUBS[1:])
def test_to_timm_writes_them_back_as_timm_wrote_them(tmp_path, name):
    src = FIXTURES / f"{name.split('.')[0]}_hub"
    out = tmp_path / "hub"
    assert main(["convert", str(src), str(out), "--to", "timm", "--quiet"]) == 0
    theirs, ours = (json.loads((folder / "config.json").read_text()) for folder in (src, out))
    assert ours["architecture"] == theirs["architecture"]
    assert ours["model_args"] == {k: v for k, v in theirs["model_args"].items()}  # every size timm recorded
    back, weights, _ = read_source(out)
    spec, state, _ = read_source(src)
    assert not back.differences(spec) and all(np.array_equal(weights[k], state[k]) for k in state)


@pytest.mark.parametrize("arch", ["resnet26t", "resnet50t"])
def test_a_full_width_tiered_stem_is_named_as_its_own_preset(arch):
    """Given the file's tiered stem, resnet26d fits resnet26t's shapes too: it was named resnet26d."""
    from parity.io.infer import infer_spec
    from parity.spec import make_spec

    shapes = make_spec(arch, num_classes=10).canonical_shapes()
    spec = infer_spec({key: np.zeros(shape, np.float32) for key, shape in shapes.items()})
    assert (spec.preset, spec.name, spec.stem) == (arch, arch, "tiered")


def test_a_conv_that_cannot_be_grouped_is_refused_not_a_crash():
    """Read in a wrong order (the live reader tries several), a bottleneck's 3x3 had fewer outputs than inputs per
    group: ZeroDivisionError escaped `infer_spec`."""
    from parity.io.infer import infer_spec
    from parity.spec import make_spec

    shapes = make_spec("resnet50", widths=(8, 16, 32, 64), stem_width=8, num_classes=10).canonical_shapes()
    weights = {key: np.zeros(shape, np.float32) for key, shape in shapes.items()}
    weights["layer1.0.conv2.weight"] = np.zeros((4, 8, 3, 3), np.float32)
    with pytest.raises(ValueError, match="not a grouped conv's shape"):
        infer_spec(weights)
