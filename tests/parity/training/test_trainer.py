"""`resnet-parity train / predict / evaluate` on the bundled digits, both backends, as a user runs them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from parity.backends import adapter_named
from parity.checks.train_steps import training_pair
from parity.cli import main
from parity.core import tolerances
from parity.io.data import Preprocess, digits
from parity.io.pipeline import batches
from parity.io.weights import get_weights, initial_weights
from parity.spec import make_spec

NARROW = [
    "--arch",
    "resnet18",
    "--stem",
    "cifar",
    "--set",
    "widths=16,32,64,128",
    "--set",
    "stem_width=16",
    "--size",
    "16",
    "--normalise",
    "half",
    "--lr",
    "0.05",
    "--batch",
    "32",
]
"""A narrow ResNet-18 with the cifar stem on 16x16 digits: 701,466 parameters, ~1 s per epoch per backend."""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert main(["train", "--data", "digits", *NARROW, "--epochs", "3", "--out", str(out)]) == 0
    return out


def history(out, backend):
    return json.loads((out / backend / "history.json").read_text())


def test_both_backends_learn_the_digits(run):
    final = {b: history(run, b)[-1]["val_acc"] for b in ("torch", "keras")}
    assert min(final.values()) >= 0.90, final
    assert abs(final["torch"] - final["keras"]) <= 0.06, final
    for name in (
        "run.json",
        "curves.png",
        "drift.csv",
        "torch/history.csv",
        "keras/best.safetensors",
        "torch/state-3.safetensors",
    ):
        assert (run / name).is_file(), name
    assert not list(run.glob("*/state-[12].safetensors"))  # earlier states removed once epoch 3 is written
    drift = json.loads((run / "drift.json").read_text())
    assert [d["epoch"] for d in drift] == [1, 2, 3] and all(0 < d["weight_distance"] < 1 for d in drift)
    csv = (run / "keras" / "history.csv").read_text().splitlines()
    assert csv[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc") and len(csv) == 4


@pytest.mark.parametrize("trained_with,loaded_into", [("keras", "torch"), ("torch", "keras")])
def test_best_checkpoint_reproduces_its_accuracy_in_the_other_backend(run, trained_with, loaded_into, capsys, tmp_path):
    best = max(history(run, trained_with), key=lambda r: r["val_acc"])
    png = tmp_path / "confusion.png"
    assert (
        main(
            [
                "evaluate",
                "--weights",
                str(run / trained_with / "best.safetensors"),
                "--data",
                "digits",
                "--backend",
                loaded_into,
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"accuracy {best['val_acc']:.2%}" in out and f"loss {best['val_loss']:.4f}" in out
    assert out.count("%") == 1 + 10  # the headline and one row per digit
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_predict_names_the_digits_in_png_files(run, tmp_path, capsys):
    _, val = digits(size=8)  # 8x8, as sklearn ships them: predict resizes as training did
    paths = []
    for label in range(10):
        i = int(np.flatnonzero(val.labels == label)[0])
        paths.append(tmp_path / f"digit{label}.png")
        Image.fromarray(val.images[i][:, :, 0]).save(paths[-1])  # greyscale PNG
    printed = {}
    for backend in ("torch", "keras"):
        assert (
            main(
                [
                    "predict",
                    *map(str, paths),
                    "--weights",
                    str(run / "keras" / "best.safetensors"),
                    "--backend",
                    backend,
                    "--topk",
                    "3",
                ]
            )
            == 0
        )
        printed[backend] = capsys.readouterr().out.strip().splitlines()
    assert printed["torch"][0].split(":")[1].split()[0] == printed["keras"][0].split(":")[1].split()[0]
    top1 = [line.split(": ")[1].split()[0] for line in printed["torch"]]
    assert sum(t == str(label) for label, t in enumerate(top1)) >= 9, printed["torch"]
    assert all(line.count("%") == 3 for line in printed["torch"])
    assert [line.split(": ")[1].split()[0] for line in printed["keras"]] == top1


def test_resume_reproduces_the_uninterrupted_history(run, tmp_path):
    """Epoch 1, then --resume to epoch 2: the first two epochs of the uninterrupted 3-epoch run."""
    out = tmp_path / "resumed"
    assert main(["train", "--data", "digits", *NARROW, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["train", "--data", "digits", *NARROW, "--epochs", "2", "--out", str(out), "--resume"]) == 0
    metrics = ("train_loss", "train_acc", "val_loss", "val_acc")
    for backend in ("torch", "keras"):
        assert [[r[m] for m in metrics] for r in history(out, backend)] == [
            [r[m] for m in metrics] for r in history(run, backend)[:2]
        ]
    assert json.loads((out / "drift.json").read_text()) == json.loads((run / "drift.json").read_text())[:2]


def test_run_directory_mistakes_are_refused(run, tmp_path, capsys):
    assert main(["train", "--data", "digits", *NARROW, "--epochs", "1", "--out", str(run)]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert (
        main(
            ["train", "--data", "digits", *NARROW[:-2], "--batch", "16", "--epochs", "4", "--out", str(run), "--resume"]
        )
        == 2
    )
    assert "batch was 32, now 16" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 2
    assert "no data folder at" in capsys.readouterr().err and not (tmp_path / "r").exists()
    assert main(["train", "--data", "digits", "--batch", "1", "--out", str(tmp_path / "r")]) == 2
    assert "--batch must be >= 2" in capsys.readouterr().err
    state = run / "torch" / "state-3.safetensors"
    assert main(["predict", str(state), "--weights", str(state)]) == 2
    assert "has no classes or preprocess in its metadata" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "cat.png"), "--weights", str(run / "torch" / "best.safetensors")]) == 2
    assert "no image at" in capsys.readouterr().err


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.05), ("adam", 1e-3)])
def test_training_steps_are_the_same_update_in_float64(optimizer, lr):
    """The drift between backends is fp32 rounding: in float64 the two training loops agree."""
    torch_train, keras_train = adapter_named("torch"), adapter_named("keras")
    spec = make_spec("resnet18", num_classes=10, stem="cifar", widths=(8, 16, 32, 64), stem_width=8)
    torch_model, keras_model = training_pair(spec, initial_weights(spec, 0), "float64")
    torch_opt = torch_train.make_optimizer(torch_model, optimizer, lr, 0.9, 5e-4)
    keras_opt = keras_train.make_optimizer(keras_model, optimizer, lr, 0.9, 5e-4)
    train, _ = digits(size=16)
    for step, (images, labels) in enumerate(batches(train, Preprocess(16, "half"), 16)):
        if step == 5:
            break
        loss_t, _ = torch_train.train_step(torch_model, torch_opt, images.astype(np.float64), labels)
        loss_k, _ = keras_train.train_step(keras_model, keras_opt, images.astype(np.float64), labels)
        assert abs(loss_t - loss_k) <= tolerances.TRAIN_STEP_FP64 * abs(loss_t)
    a, b = get_weights(torch_model), get_weights(keras_model)
    worst = max(float(np.abs(a[k] - b[k]).max() / np.abs(a[k]).max()) for k in a if np.abs(a[k]).max() > 0)
    assert worst <= tolerances.TRAIN_STEP_FP64, worst
