"""parity.checks.train_steps: SGD steps in both backends give the same losses, gradients, weights, BN statistics."""

from __future__ import annotations

import numpy as np
import pytest

from parity.backends import adapter_named
from parity.checks.train_steps import SGDConfig, compare_training, make_batches, training_pair
from parity.cli import main
from parity.core import tolerances
from parity.io.weights import get_weights, random_weights


@pytest.fixture(scope="module")
def trained18(spec18):
    weights = random_weights(spec18, 0)
    torch_model, keras_model = training_pair(spec18, weights, "float64")
    report = compare_training(torch_model, keras_model, steps=3, batch=8, height=64, seed=0)
    return weights, torch_model, keras_model, report


def test_three_steps_match(trained18):
    *_, report = trained18
    assert report.passed, report.to_dict()
    assert len(report.loss) == len(report.grads) == 3
    for diff in report.loss + report.grads + [report.weights, report.running]:
        assert diff.max_rel <= tolerances.TRAIN_STEP_FP64, diff
    assert report.config["dtype"] == "float64"


def test_training_really_moved_the_weights(trained18):
    weights, torch_model, keras_model, _ = trained18
    after = get_weights(keras_model)
    moved = max(float(np.abs(after[k] - weights[k]).max()) for k in weights)
    assert moved > 1e-4  # gradients flowed and running statistics were updated
    assert not np.allclose(after["bn1.running_mean"], weights["bn1.running_mean"])


def test_decoupled_weight_decay_is_caught(spec18):
    torch_model, keras_model = training_pair(spec18, random_weights(spec18, 1), "float64")
    report = compare_training(torch_model, keras_model, steps=2, batch=8, height=64, decoupled_decay=True)
    assert not report.passed
    assert report.weights.max_rel > 100 * tolerances.TRAIN_STEP_FP64


def test_float32_needs_an_explicit_tolerance(spec18):
    torch_model, keras_model = training_pair(spec18, random_weights(spec18, 0), "float32")
    with pytest.raises(ValueError, match="no default training tolerance for float32"):
        compare_training(torch_model, keras_model, steps=1)


def test_floatx_context_restores_keras_defaults():
    import keras

    with adapter_named("keras").dtype_scope("float64"):
        assert keras.config.floatx() == "float64"
    assert keras.config.floatx() == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_bad_arguments(spec18):
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        make_batches(spec18, 0, 8, 32, 32, 0)
    with pytest.raises(ValueError, match="batch must be >= 2 for training-mode BatchNorm, got 1"):
        make_batches(spec18, 1, 1, 32, 32, 0)
    with pytest.raises(ValueError, match="dtype must be one of"):
        training_pair(spec18, random_weights(spec18, 0), "float16")
    assert SGDConfig().momentum == 0.9


def test_check_cli_train_steps(tmp_path, capsys):
    import json

    out = tmp_path / "r.json"
    # A narrow resnet18: this checks the CLI's wiring; test_three_steps_match trains the full width.
    assert (
        main(
            [
                "check",
                "--arch",
                "resnet18",
                "--set",
                "widths=16,32,64,128",
                "--set",
                "stem_width=16",
                "--size",
                "32",
                "--direction",
                "torch2keras",
                "--train-steps",
                "3",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())["results"][0]
    assert data["train"]["passed"] is True and data["train"]["steps"] == 3
    assert "train 3 SGD steps (float64)" in capsys.readouterr().out


NARROW_CIFAR = {"num_classes": 10, "stem": "cifar", "widths": (8, 16, 32, 64), "stem_width": 8}


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_the_check_steps_with_the_optimizer_train_ships(backend, monkeypatch):
    """`check --train-steps` (train_side) and `resnet-parity train` (the adapter's train_step) must update with
    the same optimizer code: the check builds its optimizer through `make_optimizer` (spied), and its steps
    (gradients kept) leave the weights where train's steps do, in float64."""
    from parity.checks.train_steps import train_side
    from parity.io.weights import initial_weights, set_weights
    from parity.spec import make_spec

    side = adapter_named(backend)
    spec = make_spec("resnet18", **NARROW_CIFAR)
    made = []
    real = side.make_optimizer
    monkeypatch.setattr(side, "make_optimizer", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    config = SGDConfig(lr=0.05, momentum=0.9, weight_decay=5e-3)
    batches = make_batches(spec, 3, 8, 16, 16, 0)
    checked = side.build(spec, "float64")
    set_weights(checked, initial_weights(spec, 0))
    train_side(checked, batches, config)
    assert len(made) == 1 and type(made[0]).__module__.split(".")[0] in ("torch", "resnet_keras")
    trained = side.build(spec, "float64")
    set_weights(trained, initial_weights(spec, 0))
    optimizer = real(trained, "sgd", config.lr, config.momentum, config.weight_decay)
    assert type(optimizer) is type(made[0])
    for images, labels in batches:
        side.train_step(trained, optimizer, images, labels)
    a, b = get_weights(checked), get_weights(trained)
    worst = max(float(np.abs(a[k] - b[k]).max() / max(np.abs(a[k]).max(), 1e-30)) for k in a)
    assert worst <= tolerances.TRAIN_STEP_FP64, worst
    start = initial_weights(spec, 0)
    assert max(float(np.abs(a[k] - start[k]).max()) for k in start) > 1e-3  # the steps moved the weights
