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
from parity.io.checkpoints import read_with_spec

FIXTURES = Path(__file__).parents[2] / "fixtures" / "timm"
OUTPUTS = np.load(FIXTURES / "timm_outputs.npz")

FILES = {
    # file: (inferred name, classes, in channels)
    "resnet50d_tiny.pth": ("resnet50d (widths 4-8-16-32, stem 8-8-16)", 10, 3),
    "resnet26_tiny.safetensors": ("resnet26 (widths 4-8-16-32)", 7, 3),
    "resnet18d_tiny_gray.pth": ("resnet18d (widths 4-8-16-32, stem 4-4-8)", 3, 1),
    "resnext_tiny_headless.safetensors": ("resnet (bottleneck 1-2-1-1, groups 4)", 0, 3),
}


@pytest.mark.parametrize("name", list(FILES))
def test_the_file_says_what_it_is(name):
    spec, _ = read_with_spec(FIXTURES / name)
    assert (spec.name, spec.num_classes, spec.in_channels) == FILES[name]
    assert spec.variant == "inferred"


@pytest.mark.parametrize("backend", ["torch", "keras"])
@pytest.mark.parametrize("name", list(FILES))
def test_both_backends_reproduce_timm(name, backend):
    stem = name.split(".")[0]
    x, timm64, timm32 = (OUTPUTS[f"{stem}/{k}"] for k in ("input", "fp64", "fp32"))
    side = adapter_named(backend)
    model = parity.load_model(FIXTURES / name, backend=backend)
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
