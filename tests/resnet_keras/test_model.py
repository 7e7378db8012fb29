"""resnet_keras: the same architecture as resnet_torch, under Keras 3."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import resnet_keras
from parity.core.layout import keras_key
from parity.io.weights import get_weights
from parity.spec import ARCHS, make_spec
from tests.conftest import TORCHVISION_TRAINABLE, run_python


def count(variables) -> int:
    return sum(math.prod(v.shape) for v in variables)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_param_counts_match_spec_and_torchvision(arch):
    model = getattr(resnet_keras, arch)()
    assert count(model.trainable_weights) == TORCHVISION_TRAINABLE[arch]
    assert count(model.non_trainable_weights) == model.spec.param_counts()["bn_running"]


def test_variable_paths_map_to_torchvision_keys_by_rule():
    model = resnet_keras.resnet50()
    paths = [v.path for v in model.weights]
    assert "resnet/layer2/0/downsample/0/kernel" in paths
    assert "resnet/layer2/0/downsample/1/moving_variance" in paths
    assert keras_key("resnet/layer2/0/downsample/1/moving_variance", "resnet") == ("layer2.0.downsample.1.running_var")
    shapes = {k: v.shape for k, v in get_weights(model).items()}
    assert shapes == model.spec.canonical_shapes()


def test_init_mirrors_torchvision():
    keras.utils.set_random_seed(0)
    model = resnet_keras.resnet50(zero_init_residual=True)
    kernel = model.layer3.layers[0].conv2.kernel.numpy()  # HWIO
    fan_out = kernel.shape[0] * kernel.shape[1] * kernel.shape[3]
    assert float(kernel.std()) == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.02)
    assert np.all(model.layer1.layers[0].bn3.gamma.numpy() == 0)
    assert np.all(model.layer1.layers[0].bn2.gamma.numpy() == 1)
    bound = 1 / math.sqrt(2048)
    for variable in (model.fc.kernel, model.fc.bias):
        values = np.abs(variable.numpy())
        assert values.max() <= bound and values.max() > 0.95 * bound


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({}, (1, 97, 131, 3)),
        ({}, (2, 224, 224, 3)),
        ({"in_channels": 1}, (1, 64, 80, 1)),
        ({"in_channels": 4, "num_classes": 10}, (2, 65, 65, 4)),
        ({"stem": "cifar", "num_classes": 10}, (2, 32, 32, 3)),
    ],
)
def test_stage_shapes_match_spec(kwargs, shape):
    model = resnet_keras.resnet18(**kwargs)
    outputs = model.forward_stages(np.random.default_rng(0).standard_normal(shape).astype("float32"))
    expected = model.spec.stage_shapes(shape[1], shape[2])
    assert list(outputs) == list(model.spec.stage_names)
    for stage, out in outputs.items():
        c_h_w = expected[stage]
        nhwc = (shape[0],) + (c_h_w[1:] + c_h_w[:1] if len(c_h_w) == 3 else c_h_w)
        assert tuple(out.shape) == nhwc, stage


@pytest.mark.parametrize("shape", [(1, 64, 64, 4), (64, 64, 3), (1, 3, 64, 64)])
def test_wrong_input_names_the_shape(shape):
    model = resnet_keras.resnet18()
    with pytest.raises(ValueError, match=r"expected input of shape \(N, H, W, 3\).*got"):
        model(np.zeros(shape, "float32"))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_classes must be an int >= 0 .*, got -5"):
        resnet_keras.resnet18(num_classes=-5)
    with pytest.raises(ValueError, match="in_channels must be a positive int, got 0"):
        resnet_keras.resnet50(in_channels=0)
    with pytest.raises(ValueError, match="unknown arch 'resnet"):
        resnet_keras.create_model("resnet")


def test_momentum_converted_once():
    model = resnet_keras.resnet18(bn_momentum=0.01, bn_eps=2e-5)
    assert model.bn1.momentum == pytest.approx(0.99)
    assert model.layer4.layers[1].bn2.epsilon == pytest.approx(2e-5)


def test_keras_file_round_trip(tmp_path):
    model = resnet_keras.resnet18(num_classes=10, in_channels=1)
    x = np.random.default_rng(0).standard_normal((2, 40, 48, 1)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, resnet_keras.ResNet)
    assert loaded.spec == model.spec
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x, training=False)), expected)


def test_imports_no_torch_under_tensorflow_backend():
    result = run_python(
        "import sys, resnet_keras, keras\nresnet_keras.resnet18()\n"
        "assert keras.backend.backend() == 'tensorflow'\n"
        "assert 'torch' not in sys.modules\n",
        env={"KERAS_BACKEND": "tensorflow"},
    )
    assert result.returncode == 0, result.stderr


def test_runs_under_torch_backend_and_matches_torch():
    # Under KERAS_BACKEND=torch a Keras model is also a torch.nn.Module; backend detection and the
    # port must still treat it as Keras.
    code = """
import numpy as np, keras, resnet_keras, resnet_torch
from parity.io.weights import copy_weights, random_weights, set_weights
from parity.checks.compare import compare
assert keras.backend.backend() == "torch"
t = resnet_torch.resnet18(num_classes=10)
k = resnet_keras.resnet18(num_classes=10)
set_weights(t, random_weights(t.spec, 3))
copy_weights(t, k)
x = np.random.default_rng(0).standard_normal((2, 3, 45, 61)).astype("float32")
report = compare(t, k, x)
assert report.passed, report.to_json()
assert report.b == "keras"
print("max_rel", report.logits.max_rel)
"""
    result = run_python(code, env={"KERAS_BACKEND": "torch"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "max_rel" in result.stdout


# TensorFlow, the suite's own Keras backend, runs `check` in-process throughout tests/parity/checks/test_check.py.
# The other two Keras backends' check is the extended tier (CI time): test_runs_under_torch_backend_and_matches_torch
# runs the same port and comparison under the torch backend in CI, and tests/parity/training/test_scale.py the same
# Keras model on JAX in float64 (one device against two).
@pytest.mark.extended
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_check_runs_on_every_keras_backend(backend):
    """`check --keras-backend B`: float64 truth and the fp32 verdict on each Keras backend (JAX needs x64)."""
    import json
    import tempfile

    out = tempfile.mktemp(suffix=".json")
    code = (
        "import sys\nfrom parity.cli import main\n"
        f"code = main(['check', '--arch', 'resnet18', '--size', '40', '--batch', '1', '--keras-backend', "
        f"'{backend}', '--json', {out!r}])\n"
        "import keras\n"
        f"assert keras.backend.backend() == {backend!r}, keras.backend.backend()\n"
        "sys.exit(code)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    data = json.loads(open(out).read())
    assert data["provenance"]["keras_backend"] == backend
    for row in data["results"]:
        report = row["report"]
        assert report["float64"] and report["port_passed"], report
        assert max(s["max_rel"] for s in report["float64_stages"]) < 1e-12


def test_keras_file_in_a_fresh_process(tmp_path):
    """Keras rebuilds a custom class only once its module is imported: `import resnet_keras` first, or
    use `parity.load_model`, which needs nothing else."""
    path = tmp_path / "m.keras"
    resnet_keras.resnet18(num_classes=7).save(path)
    code = (
        "import keras, resnet_keras\n"
        f"a = keras.models.load_model({str(path)!r}, safe_mode=True)\n"
        f"import parity\nb = parity.load_model({str(path)!r}, backend='keras')\n"
        "assert type(a).__name__ == type(b).__name__ == 'ResNet' and a.spec == b.spec\n"
        "assert a.spec.num_classes == 7\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(__import__("parity.spec", fromlist=["VARIANTS"]).VARIANTS))
def test_keras_summary_totals_equal_the_spec_for_every_preset_and_variant(variant):
    """Every variant on a basic-block and a bottleneck depth (the other depths repeat these blocks;
    every depth of the torchvision preset is counted in test_param_counts_match_spec_and_torchvision)."""
    from parity.spec import make_spec

    for arch in ("resnet18", "resnet50"):
        spec = make_spec(arch, variant)
        model = resnet_keras.ResNet(spec)
        counts = spec.param_counts()
        trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
        assert (model.count_params(), trainable, model.count_params() - trainable) == (
            counts["keras_total"],
            counts["keras_trainable"],
            counts["keras_non_trainable"],
        ), (arch, variant)


def test_every_preset_is_reachable_by_name():
    from parity.spec import PRESETS

    assert resnet_keras.list_models() == list(PRESETS)
    model = resnet_keras.create_model(
        "resnet50d", num_classes=3, widths=(4, 8, 16, 32), stem_width=8, deep_stem_width=4
    )
    assert model.spec.avg_down and model(np.zeros((1, 33, 33, 3), np.float32)).shape == (1, 3)


def test_a_variant_is_built_by_passing_other_factories_nothing_is_patched():
    import dataclasses

    import keras

    from resnet_keras import layers as keras_layers

    def stock(plan):
        return keras.layers.BatchNormalization(epsilon=1e-3, name=keras_layers.local_name(plan))

    spec = make_spec("resnet18", widths=(8, 16, 32, 64), stem_width=8)
    variant = resnet_keras.ResNet(spec, layers=dataclasses.replace(keras_layers.LAYERS, norm=stock))
    norms = [layer for layer in variant._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and {type(n) for n in norms} == {keras.layers.BatchNormalization}
    assert {n.epsilon for n in norms} == {1e-3}
    plain = resnet_keras.ResNet(spec)
    assert {type(n) for n in plain._flatten_layers() if isinstance(n, keras.layers.BatchNormalization)} == {
        keras_layers.BatchNorm
    }
    assert [v.path for v in variant.weights] == [v.path for v in plain.weights]  # same names, same order
