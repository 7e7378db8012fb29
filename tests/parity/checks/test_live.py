"""The user's own models, neither built by this project (#30): read off their layers, proved by running them,
ported, and compared with their own layer names.

`resnet-parity check --weights resnet50.pth` said PASS for a torchvision resnet50 whose `layer3.0.bn2.eps` was
1e-3, because it compared the port with its own rebuild (eps 1e-5), 1,426x torch's noise from the user's model;
`assert_parity(torchvision_model, keras_model)` raised "ResNet carries no ResNetSpec".
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import parity
from parity.checks.live import prove
from parity.cli import main
from parity.io.live import read_live

WIDTHS = (8, 16, 32, 64)


class Block(nn.Module):
    """A tutorial's basic block: its own names, ReLU and the addition written as functions."""

    def __init__(self, cin, cout, stride=1, relu_first=False):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.n1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.n2 = nn.BatchNorm2d(cout)
        self.relu_first = relu_first
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.n1(self.c1(x)))
        out = self.n2(self.c2(out))
        if self.relu_first:  # a ReLU before the addition: no module shows it
            out = F.relu(out)
        return F.relu(out + (x if self.skip is None else self.skip(x)))


class TutorialNet(nn.Module):
    def __init__(self, classes=10, relu_first=False):
        super().__init__()
        self.entry = nn.Conv2d(3, WIDTHS[0], 7, 2, 3, bias=False)
        self.entry_bn = nn.BatchNorm2d(WIDTHS[0])
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(3, 2, 1)
        blocks, cin = [], WIDTHS[0]
        for i, width in enumerate(WIDTHS):
            for j in range(2):
                blocks.append(Block(cin, width, 2 if (j == 0 and i > 0) else 1, relu_first))
                cin = width
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.pool(self.act(self.entry_bn(self.entry(x))))
        x = self.body(x)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def calibrated(model):
    """BN statistics and affine parameters as a trained network has them (not 0 / 1)."""
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def tutorial(**kwargs):
    torch.manual_seed(0)
    return calibrated(TutorialNet(**kwargs))


def keras_resnet(torch_like):
    """A hand-written Keras subclassed ResNet: the Keras tutorial's layout ('same' padding, biased convs, Keras'
    BatchNorm defaults, a bare 1x1 projection), or, `torch_like`, a port of `TutorialNet` written by hand."""
    import keras
    from keras import layers

    def conv(filters, kernel, stride, name):
        if torch_like:
            return keras.Sequential(
                [layers.ZeroPadding2D(kernel // 2), layers.Conv2D(filters, kernel, stride, use_bias=False, name=name)]
            )
        return layers.Conv2D(filters, kernel, stride, padding="same", name=name)

    def norm(name):
        return (
            layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=name)
            if torch_like
            else layers.BatchNormalization(name=name)
        )

    class ResidualBlock(layers.Layer):
        def __init__(self, filters, stride, project, **kw):
            super().__init__(**kw)
            self.conv_a, self.norm_a = conv(filters, 3, stride, "conv_a"), norm("norm_a")
            self.conv_b, self.norm_b = conv(filters, 3, 1, "conv_b"), norm("norm_b")
            self.project = conv(filters, 1, stride, "project") if project else None
            self.project_norm = norm("project_norm") if project and torch_like else None
            self.relu, self.add = layers.ReLU(), layers.Add()

        def call(self, x, training=False):
            y = self.relu(self.norm_a(self.conv_a(x), training=training))
            y = self.norm_b(self.conv_b(y), training=training)
            shortcut = x
            if self.project is not None:
                shortcut = self.project(x)
                if self.project_norm is not None:
                    shortcut = self.project_norm(shortcut, training=training)
            return self.relu(self.add([y, shortcut]))

    class KerasResNet(keras.Model):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.stem_conv, self.stem_norm = conv(WIDTHS[0], 7, 2, "stem_conv"), norm("stem_norm")
            self.stem_relu = layers.ReLU()
            self.stem_pad = layers.ZeroPadding2D(1) if torch_like else None
            self.stem_pool = layers.MaxPooling2D(3, 2, padding="valid" if torch_like else "same")
            self.blocks, cin = [], WIDTHS[0]
            for i, width in enumerate(WIDTHS):
                for j in range(2):
                    stride = 2 if (j == 0 and i > 0) else 1
                    self.blocks.append(ResidualBlock(width, stride, stride != 1 or cin != width, name=f"block{i}_{j}"))
                    cin = width
            self.pool, self.classifier = layers.GlobalAveragePooling2D(), layers.Dense(10, name="classifier")

        def call(self, x, training=False):
            x = self.stem_relu(self.stem_norm(self.stem_conv(x), training=training))
            x = self.stem_pool(self.stem_pad(x) if self.stem_pad is not None else x)
            for block in self.blocks:
                x = block(x, training=training)
            return self.classifier(self.pool(x))

    keras.utils.set_random_seed(0)
    model = KerasResNet(name="mine")
    model(np.zeros((1, 64, 64, 3), "float32"))
    rng = np.random.default_rng(0)
    for variable in model.weights:  # calibrated-looking statistics
        role = variable.path.rpartition("/")[2]
        ranges = {"gamma": (0.5, 1.5), "beta": (-0.2, 0.2), "moving_mean": (-0.5, 0.5), "moving_variance": (0.5, 2.0)}
        if role in ranges:
            variable.assign(rng.uniform(*ranges[role], variable.shape).astype("float32"))
    return model


def test_a_tutorials_torch_resnet_is_read_ported_and_compared_by_its_own_names():
    model = tutorial()
    reading = read_live(model)
    assert reading.names["layer3.0.bn2"] == "body.4.n2" and reading.names["fc"] == "head"
    assert reading.spec.widths == WIDTHS and reading.spec.num_classes == 10
    port = parity.port(model, to="keras")
    report = parity.assert_parity(model, port)
    assert report.proofs and "your TutorialNet (torch) read as resnet18" in report.proofs[0]
    assert report.port_max_rel < 1e-13
    assert parity.port(model, to="torch").spec == port.spec


def test_a_changed_eps_is_refused_naming_the_layer_never_rebuilt_with_the_default():
    model = tutorial()
    model.body[4].n2.eps = 1e-3
    with pytest.raises(ValueError) as found:
        parity.port(model, to="keras")
    assert str(found.value) == (
        "your TutorialNet: body.4.n2.eps (layer3.0.bn2.eps) is 0.001 where the rest use 1e-05; the spec has one "
        "BatchNorm eps for the network (and one eps for the stem)"
    )
    with pytest.raises(ValueError, match="body.4.n2.eps"):
        parity.assert_parity(model, parity.port(tutorial(), to="keras"))


def test_momentum_is_carried_everywhere_or_refused_where_one_layer_differs():
    model = tutorial()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.05
    port = parity.port(model, to="keras")
    assert port.spec.bn_momentum == 0.05
    norms = [layer for layer in port._flatten_layers() if hasattr(layer, "moving_mean")]
    assert norms and all(abs(layer.momentum - 0.95) < 1e-12 for layer in norms)  # Keras' convention
    model.body[0].n1.momentum = 0.1
    with pytest.raises(
        ValueError, match=r"body\.0\.n1\.momentum \(layer1\.0\.bn1\.momentum\) is 0\.1 where the rest use 0\.05"
    ):
        read_live(model)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda m: setattr(m.pool, "ceil_mode", True), "pool.ceil_mode is True; the spec's stem pool floors"),
        (lambda m: setattr(m, "act", nn.SiLU()), "layer 'act' is a silu activation; these ResNets use ReLU"),
        (
            lambda m: setattr(m.body[2].c1, "dilation", (2, 2)),
            "body.2.c1.dilation is (2, 2); resnet18",
        ),
    ],
)
def test_what_the_spec_cannot_express_is_refused_by_name(change, message):
    model = tutorial()
    change(model)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_live(model)


def test_what_no_layer_shows_is_proved_by_running_the_model():
    """A ReLU before the addition, written with F.relu: found by running both readings; a functional SiLU where
    the ReLU module stands is no reading at all, refused with the distance measured."""
    proof = prove(tutorial(relu_first=True))
    assert proof.reading.spec.relu_before_add and proof.float64_rel is not None and proof.float64_rel < 1e-12

    class Swished(TutorialNet):
        def forward(self, x):
            x = self.pool(F.silu(self.entry_bn(self.entry(x))))
            return self.head(torch.flatten(F.adaptive_avg_pool2d(self.body(x), 1), 1))

    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"it computes something no layer shows"):
        prove(calibrated(Swished()))


def test_a_hand_written_keras_resnet_is_read_and_ported_to_torch():
    model = keras_resnet(torch_like=False)
    port = parity.port(model, to="torch")
    spec = port.spec
    assert (spec.padding, spec.conv_bias, spec.bn_eps, spec.shortcut_norm) == ("same", True, 1e-3, False)
    assert abs(spec.bn_momentum - 0.01) < 1e-12
    parity.assert_parity(model, port)


def test_one_channel_bug_in_a_users_keras_port_is_named_by_the_users_layer():
    """The user's torch tutorial against the user's own Keras port of it, neither built by this project."""
    from parity.core.layout import KERAS_TO_TORCH_SUFFIX, keras_layout

    model = tutorial()
    mine = keras_resnet(torch_like=True)
    weights = read_live(model).weights
    names = read_live(mine).names
    for variable in mine.weights:
        layer = variable.path.rpartition("/")[0]
        canonical = next(c for c, own in names.items() if own == layer)
        role = KERAS_TO_TORCH_SUFFIX[variable.path.rpartition("/")[2]]
        variable.assign(keras_layout(weights[f"{canonical}.{role}"]))
    parity.assert_parity(model, mine)
    bad = names["layer3.0.conv2"]
    kernel = next(v for v in mine.weights if v.path == f"{bad}/kernel")
    scaled = np.array(kernel.numpy())
    scaled[..., 3] *= 1.01
    kernel.assign(scaled)
    with pytest.raises(AssertionError) as found:
        parity.assert_parity(model, mine)
    assert f"first wrong layer: layer3.0.conv2 ({bad!r} in the model under test)" in str(found.value)
    assert bad.startswith("mine/block2_0/") and bad.endswith("/conv_b")  # the user's block, Keras' path


USERNET = """
from tests.parity.checks.test_live import TutorialNet, tutorial


def build():
    return TutorialNet()


def changed():
    model = tutorial()
    model.body[4].n2.eps = 1e-3
    return model
"""


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """A user's folder holding `usernet.py`, as the current folder (sys.path restored after)."""
    (tmp_path / "usernet.py").write_text(USERNET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


def test_check_module_judges_the_users_model_and_refuses_in_one_line(in_tmp, capsys):
    torch.save(tutorial().state_dict(), in_tmp / "mine.pth")
    assert main(["check", "--module", "usernet:build", "--weights", "mine.pth", "--size", "64"]) == 0
    done = capsys.readouterr()
    assert "your model usernet:build with weights mine.pth" in " ".join(done.out.split()) and "PASS" in done.out
    assert "your TutorialNet (torch) read as resnet18" in done.err
    assert main(["check", "--module", "usernet:changed", "--size", "64"]) == 2
    refused = capsys.readouterr().err
    assert refused.strip().splitlines()[-1] == (
        "resnet-parity check: error: your TutorialNet: body.4.n2.eps (layer3.0.bn2.eps) is 0.001 where the rest use "
        "1e-05; the spec has one BatchNorm eps for the network (and one eps for the stem)"
    )
    assert "Traceback" not in refused
    assert main(["check", "--module", "usernet"]) == 2
    assert "give PACKAGE.MODULE:FACTORY" in capsys.readouterr().err
    assert main(["check", "--module", "usernet:build", "--direction", "keras2torch"]) == 2
    assert "is a torch model, the reference of its check: use --direction torch2keras" in capsys.readouterr().err
    assert main(["check", "--module", "usernet:build", "--arch", "resnet18"]) == 2
    assert "the model decides the architecture" in capsys.readouterr().err


def test_a_weights_only_file_says_what_it_assumed(in_tmp, capsys):
    import resnet_torch

    torch.save(resnet_torch.ResNet(parity.make_spec("resnet18", num_classes=10)).state_dict(), in_tmp / "r18.pth")
    assert main(["check", "--weights", "r18.pth", "--size", "32", "--direction", "torch2keras"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "assumed, as r18.pth holds weights only: BatchNorm eps 1e-05 and momentum 0.1" in said
    assert "ceil_mode False" in said and "--module PACKAGE.MODULE:FACTORY --weights r18.pth" in said


@pytest.mark.parametrize(
    "arch,variant", [("resnet50", "torchvision"), ("resnet50", "v1"), ("resnet50d", "torchvision")]
)
def test_torchvision_named_bottlenecks_read_their_stride_and_name_the_eps_layer(arch, variant):
    """A torchvision-layout network (narrow) that carries no spec, as torchvision's and timm's own objects: the
    stride's place (v1.5 or v1) and an avg-down shortcut (its pool has no weights: plain resnet50's order and
    shapes fit too) come from the layers; a changed eps is named with torchvision's name."""
    import resnet_torch

    spec = parity.make_spec(arch, variant, widths=(8, 16, 32, 64), stem_width=8, num_classes=10)
    model = calibrated(resnet_torch.ResNet(spec))
    del model.spec  # now just an nn.Module with torchvision's names
    reading = read_live(model)
    assert reading.spec.differences(spec) == []
    model.layer3[0].bn2.eps = 1e-3
    with pytest.raises(ValueError, match=re.escape("ResNet: layer3.0.bn2.eps is 0.001 where the rest use 1e-05")):
        read_live(model)


def test_a_keras_applications_object_is_read_with_its_hyperparameters_and_proved_in_float64():
    """keras.applications' ResNet50 as built in memory (a Functional: its layers come in graph order, a block's
    shortcut conv interleaved with its main path): eps 1.001e-5, biased convs and the v1 stride read off the
    layers; the reading proved in float64 on a float64 rebuild of the user's graph."""
    import keras

    model = keras.applications.ResNet50(weights=None, classes=3, classifier_activation=None, input_shape=(32, 32, 3))
    proof = prove(model)
    spec = proof.reading.spec
    assert (spec.preset, spec.stride_on, spec.conv_bias, spec.bn_eps) == ("resnet50", "v1", True, 1.001e-5)
    assert proof.float64_rel is not None and proof.float64_rel < 1e-12
    assert proof.reading.names["layer2.0.downsample.0"] == "conv3_block1_0_conv"
