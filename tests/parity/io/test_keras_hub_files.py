"""keras-hub ResNetBackbone presets, read and written without keras-hub: presets keras-hub 0.32.0 saved
(tests/fixtures/keras_hub, with the script that made them) load with no flags into both backends and reproduce
keras-hub's own features; presets we write hold the same network (and load in keras-hub itself where it is
installed: CI has none, see the note in the issue for the run with it)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import parity
from parity.backends import adapter_named
from parity.checks.diff import StageDiff
from parity.core import tolerances
from parity.io.checkpoints import read_with_spec, write_for_library
from parity.io.libraries.keras_hub import layer_names
from parity.spec import make_spec

FIXTURES = Path(__file__).parents[2] / "fixtures" / "keras_hub"
OUTPUTS = np.load(FIXTURES / "keras_hub_outputs.npz")


@pytest.mark.parametrize(
    "preset, backends, fields",
    [
        ("resnet_vd_narrow", ("torch", "keras"), {"stem": "deep", "avg_down": True, "preact": False}),
        ("resnet_v2_narrow", ("torch",), {"stem": "imagenet", "avg_down": False, "preact": True}),
    ],
)
def test_presets_reproduce_keras_hub(preset, backends, fields):
    spec, _ = read_with_spec(FIXTURES / preset)
    assert {k: getattr(spec, k) for k in fields} == fields
    assert (spec.num_classes, spec.pooling, spec.widths) == (0, None, (64, 16, 16, 32))
    x, ref64, ref32 = (OUTPUTS[f"{preset}/{k}"] for k in ("input", "fp64", "fp32"))
    for backend in backends:
        side = adapter_named(backend)
        model = parity.load_model(FIXTURES / preset, backend=backend)
        with side.float64(model) as model64:
            ours64 = side.run_stages(model64, x)["features"]
        assert StageDiff.measure("features", ref64, ours64, tolerances.FP64).passed
        noise = StageDiff.measure("features", ref64, ref32, 1.0).max_rel
        ours32 = StageDiff.measure("features", ref64, side.run_stages(model, x)["features"], 1.0).max_rel
        assert ours32 <= max(tolerances.FP32_NOISE_MULTIPLE * noise, tolerances.FP32_FLOOR), (ours32, noise)


def test_the_weights_file_alone_reads_its_config():
    spec, _ = read_with_spec(FIXTURES / "resnet_v2_narrow" / "model.weights.h5")
    assert spec.preact


def test_layer_order_puts_the_shortcut_where_keras_does():
    spec = make_spec("resnet50", layers=(1, 1, 1, 1), num_classes=0, pooling=None)
    names = [name for name, *_ in layer_names(spec)][:10]
    assert names == [
        "conv1_conv",
        "conv1_bn",
        "stack0_block0_1_conv",
        "stack0_block0_1_bn",
        "stack0_block0_2_conv",
        "stack0_block0_2_bn",
        "stack0_block0_0_conv",  # ties with the last conv by depth from the output: created first, listed first
        "stack0_block0_3_conv",
        "stack0_block0_0_bn",
        "stack0_block0_3_bn",
    ]


def test_written_preset_round_trips_and_refuses_what_keras_hub_cannot_hold(tmp_path):
    spec, weights = read_with_spec(FIXTURES / "resnet_vd_narrow")
    out = write_for_library(weights, spec, tmp_path / "preset", "keras-hub")
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["block_type"] == "bottleneck_block_vd" and config["class_name"] == "ResNetBackbone"
    back, again = read_with_spec(out)
    assert back == spec and all(np.array_equal(again[k], weights[k]) for k in weights)
    narrow = make_spec("resnet18", widths=(8, 16, 32, 64), num_classes=0, pooling=None)
    zeros = {k: np.zeros(s, np.float32) for k, s in narrow.canonical_shapes().items()}
    with pytest.raises(ValueError, match="wants 64 filters in its first stack"):
        write_for_library(zeros, narrow, tmp_path / "narrow", "keras-hub")
    headed = make_spec("resnet18")
    zeros = {k: np.zeros(s, np.float32) for k, s in headed.canonical_shapes().items()}
    with pytest.raises(
        ValueError, match=r"keras-hub's ResNetBackbone has no num_classes=\d+ \(it builds num_classes=0\)"
    ):
        write_for_library(zeros, headed, tmp_path / "headed", "keras-hub")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preset"]


@pytest.mark.skipif(importlib.util.find_spec("keras_hub") is None, reason="keras-hub is not installed")
def test_keras_hub_loads_what_we_write(tmp_path):
    import keras
    import keras_hub

    spec, weights = read_with_spec(FIXTURES / "resnet_v2_narrow")
    out = write_for_library(weights, spec, tmp_path / "preset", "keras-hub")
    backbone = keras_hub.models.ResNetBackbone.from_preset(str(out))
    x = OUTPUTS["resnet_v2_narrow/input"]
    theirs = keras.ops.convert_to_numpy(backbone(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert np.array_equal(theirs, OUTPUTS["resnet_v2_narrow/fp32"])  # the very weights keras-hub saved
