"""resnet_torch: torchvision's keys, shapes, init and constructor behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import resnet_torch
from parity.spec import ARCHS, make_spec
from tests.conftest import TORCHVISION_TRAINABLE, run_python


@pytest.mark.parametrize("arch", list(ARCHS))
def test_param_counts_match_spec_and_torchvision(arch):
    model = getattr(resnet_torch, arch)()
    trainable = sum(p.numel() for p in model.parameters())
    running = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
    assert trainable == TORCHVISION_TRAINABLE[arch] == model.spec.param_counts()["trainable"]
    assert running == model.spec.param_counts()["bn_running"]


def test_state_dict_is_torchvision_key_for_key():
    model = resnet_torch.resnet50()
    state = model.state_dict()
    expected = model.spec.canonical_shapes()
    weights = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert list(weights) == list(expected)  # same keys, same (torchvision) order
    assert weights == expected
    counters = [k for k in state if k.endswith("num_batches_tracked")]
    assert len(counters) == 53 and "layer2.0.downsample.1.num_batches_tracked" in counters


def test_torchvision_style_checkpoint_loads_strict(spec18):
    # A state dict exactly as torchvision writes one (counters included) loads with strict=True.
    source = resnet_torch.ResNet(spec18)
    checkpoint = {k: v.clone() + 0.01 for k, v in source.state_dict().items()}
    target = resnet_torch.ResNet(spec18)
    result = target.load_state_dict(checkpoint, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(1, 3, 64, 64)
    source.load_state_dict(checkpoint)
    assert torch.equal(source.eval()(x), target.eval()(x))


def test_torchvision_init():
    torch.manual_seed(0)
    model = resnet_torch.resnet50(zero_init_residual=True)
    w = model.layer3[0].conv2.weight.detach()
    fan_out = w.shape[0] * w.shape[2] * w.shape[3]
    assert float(w.std()) == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.02)
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)
    assert torch.all(model.layer1[0].bn3.weight == 0)  # zero_init_residual
    assert torch.all(model.layer1[0].bn2.weight == 1)
    bound = 1 / math.sqrt(2048)
    assert float(model.fc.weight.abs().max()) <= bound
    assert float(model.fc.weight.abs().max()) > 0.95 * bound


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({}, (1, 3, 97, 131)),
        ({}, (2, 3, 224, 224)),
        ({"in_channels": 1}, (1, 1, 64, 80)),
        ({"in_channels": 4, "num_classes": 10}, (2, 4, 65, 65)),
        ({"stem": "cifar", "num_classes": 10}, (2, 3, 32, 32)),
    ],
)
def test_stage_shapes_match_spec(kwargs, shape):
    model = resnet_torch.resnet18(**kwargs).eval()
    with torch.no_grad():
        outputs = model.forward_stages(torch.randn(*shape))
    expected = model.spec.stage_shapes(shape[2], shape[3])
    assert list(outputs) == list(model.spec.stage_names)
    for stage, out in outputs.items():
        assert tuple(out.shape) == (shape[0],) + expected[stage], stage


@pytest.mark.parametrize("shape", [(1, 4, 64, 64), (3, 64, 64), (1, 64, 64, 3)])
def test_wrong_input_names_the_shape(shape):
    model = resnet_torch.resnet18()
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, H, W\).*got"):
        model(torch.zeros(*shape))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"num_classes must be an int >= 0 \(0: no fc, the pooled features\), got -1"):
        resnet_torch.resnet18(num_classes=-1)
    with pytest.raises(ValueError, match="in_channels must be a positive int, got -1"):
        resnet_torch.resnet34(in_channels=-1)
    with pytest.raises(ValueError, match="unknown arch 'resnet20'"):
        resnet_torch.create_model("resnet20")
    with pytest.raises(ValueError, match="widths has 4 entries but layers has 5"):
        resnet_torch.resnet18(layers=(1, 1, 1, 1, 1))
    with pytest.raises(TypeError, match="spec must be a ResNetSpec"):
        resnet_torch.ResNet("resnet18")


def test_imports_no_keras_or_tensorflow():
    result = run_python(
        "import sys, resnet_torch\nresnet_torch.resnet18()\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\nassert not bad, bad\n"
    )
    assert result.returncode == 0, result.stderr


def test_spec_overrides_reach_the_modules():
    model = resnet_torch.resnet50(bn_eps=1e-3, bn_momentum=0.01, conv_bias=True)
    assert model.bn1.eps == 1e-3 and model.layer3[2].bn2.momentum == 0.01
    assert model.conv1.bias is not None
    assert np.isclose(model.spec.bn_eps, 1e-3)


def test_load_model_reads_the_architecture_from_the_file(tmp_path):
    import parity
    import resnet_torch
    from parity.io.checkpoints import save_checkpoint

    model = resnet_torch.resnet34(num_classes=5)
    save_checkpoint(model, tmp_path / "m.safetensors")
    loaded = parity.load_model(tmp_path / "m.safetensors", backend="torch")
    assert loaded.spec == model.spec
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


@pytest.mark.parametrize("size", [(8, 8), (9, 9), (7, 10)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [1, 3, 7])
def test_same_padding_equals_keras_same(size, stride, kernel):
    """torch's SameConv2d / SameMaxPool2d against Keras 'same', even and odd sizes, stride 1 and 2."""
    import keras

    from parity.spec import ConvPlan, PoolPlan
    from resnet_torch.layers import SameConv2d, SameMaxPool2d

    rng = np.random.default_rng(kernel * 10 + stride)
    x = rng.standard_normal((2, 3, *size)).astype(np.float32)
    plan = ConvPlan("c", 3, 4, kernel, stride, 0, True, same=True)
    conv = SameConv2d(3, 4, kernel, stride, bias=True, plan=plan)
    k_conv = keras.layers.Conv2D(4, kernel, strides=stride, padding="same")
    k_conv.build((None, *size, 3))
    k_conv.kernel.assign(conv.weight.detach().numpy().transpose(2, 3, 1, 0))
    k_conv.bias.assign(conv.bias.detach().numpy())
    with torch.no_grad():
        ours = conv(torch.from_numpy(x)).numpy()
    theirs = keras.ops.convert_to_numpy(k_conv(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    if kernel == 1:
        return
    signed = x - 0.5  # negative values: a zero-padded cell would win where -inf must not
    pool = SameMaxPool2d(PoolPlan("p", kernel, stride, 0, same=True))
    k_pool = keras.layers.MaxPooling2D(kernel, strides=stride, padding="same")
    ours = pool(torch.from_numpy(signed)).numpy()
    theirs = keras.ops.convert_to_numpy(k_pool(signed.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(ours, theirs)


def test_every_preset_is_reachable_by_name():
    from parity.spec import PRESETS

    assert resnet_torch.list_models() == list(PRESETS)
    model = resnet_torch.create_model("resnext50_32x4d", num_classes=0, widths=(16, 32, 64, 128), stem_width=8)
    assert model.spec.groups == 32 and model.spec.num_classes == 0
    with pytest.raises(ValueError, match="unknown arch 'resnet20'"):
        resnet_torch.create_model("resnet20")


def test_a_variant_is_built_by_passing_other_factories_nothing_is_patched():
    import dataclasses

    from resnet_torch import layers as torch_layers

    def eps_1e3(plan):
        return torch.nn.BatchNorm2d(plan.channels, eps=1e-3)

    spec = make_spec("resnet18", widths=(8, 16, 32, 64), stem_width=8)
    variant = resnet_torch.ResNet(spec, layers=dataclasses.replace(torch_layers.LAYERS, norm=eps_1e3))
    assert {m.eps for m in variant.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-3}
    assert torch_layers.make_norm is torch_layers.LAYERS.norm  # the module's own factories untouched
    plain = resnet_torch.ResNet(spec)
    assert {m.eps for m in plain.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-5}
    assert list(variant.state_dict()) == list(plain.state_dict())  # same names, same order
