"""What a new user hit (issue: crashes, silent flags, Ctrl-C): one clear line, exit code, nothing left behind."""

from __future__ import annotations

import numpy as np

from parity.cli import main

NARROW = [
    "--arch",
    "resnet18",
    "--stem",
    "cifar",
    "--set",
    "widths=8,16,32,64",
    "--set",
    "stem_width=8",
    "--size",
    "16",
]


def _folder(root, classes: int, per_class: int):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    return root


def test_fewer_images_than_the_batch_is_refused_before_anything_is_written(tmp_path, capsys):
    data = _folder(tmp_path / "data", 3, 5)  # 15 images, about 12 after the validation split
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), *NARROW, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--batch 32 is more than the" in err and "training images" in err and "pass --batch" in err
    assert not out.exists()


def test_one_class_is_refused_naming_the_folder(tmp_path, capsys):
    data = _folder(tmp_path / "one", 1, 6)
    assert main(["train", "--data", str(data), *NARROW, "--batch", "2", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert str(data) in err and "at least two classes" in err
    assert not (tmp_path / "r").exists()


def test_sync_bn_where_it_cannot_take_effect_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--data", "digits", *NARROW, "--sync-bn", "--epochs", "1", "--out", str(out)]) == 2
    assert "--sync-bn: SyncBatchNorm normalises over the processes of a torchrun run" in capsys.readouterr().err
    assert not out.exists()


def test_ctrl_c_in_the_first_epoch_leaves_no_folder_and_one_line(tmp_path, capsys, monkeypatch):
    from parity.training import trainer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train_epoch", interrupted)
    out = tmp_path / "r"
    assert main(["train", "--data", "digits", *NARROW, "--backend", "torch", "--epochs", "1", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"resnet-parity train: interrupted before epoch 1 ended; {out} was removed"]
    assert not out.exists()
    # and the next command is not blocked by anything
    monkeypatch.undo()
    assert main(["train", "--data", "digits", *NARROW, "--backend", "torch", "--epochs", "1", "--out", str(out)]) == 0


def test_a_run_that_never_finished_an_epoch_does_not_block_the_next(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "run.json").write_text("{}")  # what a crash in epoch 1 used to leave
    assert main(["train", "--data", "digits", *NARROW, "--backend", "torch", "--epochs", "1", "--out", str(out)]) == 0
    assert (out / "torch" / "state-1.safetensors").is_file()


def test_convert_never_overwrites_its_own_source(tmp_path, capsys):
    import resnet_torch
    from parity.io.checkpoints import save_checkpoint

    path = tmp_path / "m.safetensors"
    save_checkpoint(resnet_torch.resnet18(num_classes=3), path)
    before = path.read_bytes()
    assert main(["convert", str(path), str(path), "--force"]) == 2
    assert "is the source file itself" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_sixteen_bit_png_is_scaled_by_its_bit_depth_and_the_conversion_said(tmp_path):
    from PIL import Image

    from parity.io.inputs import IMAGENET_MEAN, IMAGENET_STD, describe_images, load_image

    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)  # mean 0.5 of full scale
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    Image.new("RGBA", (64, 64), (10, 20, 30, 128)).save(tmp_path / "rgba.png")
    x = load_image(tmp_path / "g16.png", size=64)
    pixels = (
        x * np.asarray(IMAGENET_STD, np.float32)[:, None, None] + np.asarray(IMAGENET_MEAN, np.float32)[:, None, None]
    )
    assert abs(float(pixels.mean()) - 0.5) < 0.02, float(pixels.mean())  # Pillow's convert gave 0.998
    lines = describe_images([tmp_path / "g16.png", tmp_path / "rgba.png"])
    assert lines[0].endswith("16-bit grayscale scaled to 8 bits; L -> RGB")
    assert lines[1].endswith("RGBA -> RGB (alpha dropped)")


def test_export_takes_your_weights_and_the_spec_overrides(tmp_path, capsys):
    import onnx

    import resnet_torch
    from parity.io.checkpoints import save_checkpoint

    path = tmp_path / "m.safetensors"
    save_checkpoint(resnet_torch.resnet18(num_classes=3, stem="cifar", widths=(8, 16, 32, 64), stem_width=8), path)
    out = tmp_path / "m.onnx"
    assert main(["export", "--backend", "torch", "--weights", str(path), "--size", "16", "--out", str(out)]) == 0
    graph = onnx.load(str(out))
    assert graph.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 3
    out2 = tmp_path / "n.onnx"
    assert (
        main(
            [
                "export",
                "--backend",
                "torch",
                "--arch",
                "resnet18",
                "--set",
                "widths=8,16,32,64",
                "--set",
                "stem_width=8",
                "--num-classes",
                "4",
                "--size",
                "32",
                "--out",
                str(out2),
            ]
        )
        == 0
    )
    assert onnx.load(str(out2)).graph.output[0].type.tensor_type.shape.dim[1].dim_value == 4
    assert (
        main(["export", "--backend", "torch", "--weights", str(path), "--seed", "1", "--out", str(tmp_path / "x.onnx")])
        == 2
    )
    assert "with --weights the file decides" in capsys.readouterr().err


def test_threads_reach_every_framework_and_the_report(tmp_path):
    """--threads N: set before the frameworks start (a fresh process), in torch, TensorFlow and the report."""
    import json

    from tests.conftest import run_python

    out = tmp_path / "c.json"
    code = (
        "import sys, json\nfrom parity.cli import main\n"
        f"assert main(['check', '--arch', 'resnet18', '--size', '32', '--batch', '1', '--direction', 'torch2keras',"
        f" '--uncalibrated', '--threads', '1', '--json', {str(out)!r}]) == 0\n"
        "import torch, tensorflow as tf\n"
        "print(json.dumps([torch.get_num_threads(), tf.config.threading.get_intra_op_parallelism_threads()]))\n"
    )
    result = run_python(code, env={"OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [1, 1]
    assert json.loads(out.read_text())["provenance"]["threads"] == 1


def test_threads_of_the_machine_by_default():
    import os

    from parity.core.threads import available_cpus

    assert 1 <= available_cpus() <= (os.cpu_count() or 1)


def test_resume_takes_the_settings_from_the_run_directory(tmp_path, capsys):
    import json

    out = tmp_path / "r"
    first = ["train", "--data", "digits", *NARROW, "--backend", "torch", "--batch", "16", "--lr", "0.05"]
    assert main([*first, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["train", "--resume", "--out", str(out), "--epochs", "2"]) == 0  # nothing retyped
    history = json.loads((out / "torch" / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert main(["train", "--resume", "--out", str(out), "--epochs", "3", "--lr", "0.1"]) == 2
    assert "lr was 0.05, now 0.1" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "new")]) == 2
    assert "--data is required" in capsys.readouterr().err


def test_check_refuses_sizes_the_network_cannot_take_or_the_machine_cannot_hold(capsys, monkeypatch):
    assert main(["check", "--arch", "resnet18", "--size", "1"]) == 2
    err = capsys.readouterr().err
    assert "--size 1x1: resnet18 downsamples by 32" in err and "use --size 32 or more" in err
    assert main(["check", "--arch", "resnet50", "--size", "4096", "--batch", "1"]) == 2
    err = capsys.readouterr().err
    assert "the activations alone need about" in err and "GB this machine has available" in err
    from parity.core import threads

    monkeypatch.setattr(threads, "available_memory", lambda: 10**7)  # 0.01 GB free: even 64x64 is refused
    assert main(["check", "--arch", "resnet18", "--size", "64", "--batch", "2"]) == 2
    assert "more than the 0.01 GB" in capsys.readouterr().err


def test_quiet_silences_progress_not_results(capsys):
    assert main(["summary", "--arch", "resnet18", "--size", "64", "--backends", "", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "total" in out and err == ""


def test_ctrl_c_during_an_export_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    from parity.checks import export

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_write_checked", interrupted)
    out = tmp_path / "m.onnx"
    assert main(["export", "--backend", "torch", "--arch", "resnet18", "--size", "32", "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        "resnet-parity export: interrupted; nothing half-written was left"
    ]
    assert list(tmp_path.iterdir()) == []
