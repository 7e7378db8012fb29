"""What a new user hit (issue: crashes, silent flags, Ctrl-C): one clear line, exit code, nothing left behind."""

from __future__ import annotations

import numpy as np
import pytest

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
    # TF_CPP_MIN_LOG_LEVEL unset, as a user has it: TensorFlow's C++ start-up block (twice per process) is not shown
    result = run_python(code, env={"OMP_NUM_THREADS": "2", "TF_CPP_MIN_LOG_LEVEL": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [1, 1]
    assert json.loads(out.read_text())["provenance"]["threads"] == 1
    assert "absl::InitializeLog" not in result.stderr and "oneDNN" not in result.stderr, result.stderr


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


def test_sigterm_ends_a_command_as_ctrl_c_does(tmp_path, capsys, monkeypatch):
    """SIGTERM killed Python without its cleanup (a temporary file left, no word); now it is Ctrl-C's one line."""
    import os
    import signal

    from parity.checks import export

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(export, "_write_checked", terminated)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "m.onnx"
    assert main(["export", "--backend", "torch", "--arch", "resnet18", "--size", "32", "--out", str(out)]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "resnet-parity export: interrupted; nothing half-written was left"
    )
    assert list(tmp_path.iterdir()) == [] and signal.getsignal(signal.SIGTERM) is before


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
    lines = capsys.readouterr().err.strip().splitlines()
    # the step line (stderr is not a terminal here), then the one line of the interrupt
    assert lines[0].startswith("exporting resnet18 (torch) to ") and lines[1:] == [
        "resnet-parity export: interrupted; nothing half-written was left"
    ]
    assert list(tmp_path.iterdir()) == []


# -- issue 29: what a new user hit, second round ------------------------------------------------------------------

TINY = {"widths": (4, 8, 16, 32), "stem_width": 4, "num_classes": 20}


def _tiny_file(tmp_path, name, change):
    from parity.io.checkpoints import write_checkpoint
    from parity.io.weights import random_weights
    from parity.spec import make_spec

    spec = make_spec("resnet18", **TINY)
    weights = random_weights(spec, 0)
    change(weights)
    return write_checkpoint(weights, tmp_path / name, spec)


def test_a_nan_weight_is_said_first_and_never_passes(tmp_path, capsys):
    def one_nan(w):
        w["layer2.0.conv1.weight"] = w["layer2.0.conv1.weight"].copy()
        w["layer2.0.conv1.weight"][0, 0, 0, 0] = np.nan

    path = _tiny_file(tmp_path, "nan.safetensors", one_nan)
    assert main(["check", "--weights", str(path), "--size", "32", "--direction", "torch2keras", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "resnet18: not finite: the weights of both models: layer2.0.conv1.weight 1 NaN of "
        "288 -> torch: not finite from layer2 on, logits 40 NaN of 40; keras: not finite from layer2 on, logits 40 "
        "NaN of 40"
    )
    row = next(line for line in out.splitlines() if "torch2keras" in line)
    assert "FAIL" in row and "not finite" in row  # the table's verdict and its logits cell


def test_an_inf_weight_in_the_fc_never_passes(tmp_path, capsys):
    def one_inf(w):
        w["fc.weight"] = w["fc.weight"].copy()
        w["fc.weight"][3, 5] = np.inf

    path = _tiny_file(tmp_path, "inf.safetensors", one_inf)
    assert main(["check", "--weights", str(path), "--size", "32", "--direction", "torch2keras", "--quiet"]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert "fc.weight 1 inf of 640" in first and "torch: not finite from logits on" in first


def test_train_into_a_folder_it_cannot_write_is_one_line(tmp_path, capsys, monkeypatch):
    """A read-only folder (errno 30) escaped as an OSError traceback from the run directory's mkdir."""
    import errno
    import pathlib

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    (tmp_path / "afile").write_text("not a folder")
    args = ["train", "--data", "digits", *NARROW, "--backend", "torch", "--epochs", "1", "--out"]
    assert main([*args, str(tmp_path / "afile" / "run")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"resnet-parity train: error: --out {tmp_path / 'afile' / 'run'}: cannot write there (Not a directory)"
    )
    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    assert main([*args, str(tmp_path / "ro" / "run")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"resnet-parity train: error: --out {tmp_path / 'ro' / 'run'}: cannot write there (Read-only file system)"
    )


def test_scale_without_jax_says_so_before_anything_runs(capsys, monkeypatch):
    """After `pip install .[all]` (no jax) the torch part ran, then the JAX child's traceback, cut mid-word."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    assert main(["scale"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "resnet-parity scale: error: the Keras scale check runs Keras on JAX (keras.distribution is JAX-only), and jax "
        "is not installed: pip install 'resnet-parity[jax]', or --backend torch"
    )
    assert captured.out == ""  # nothing ran
    assert main(["check", "--keras-backend", "jax"]) == 2
    assert "pip install 'resnet-parity[jax]'" in capsys.readouterr().err


def test_resume_of_a_run_that_is_not_there_says_so(tmp_path, capsys):
    """It said "--data is required" instead."""
    assert main(["train", "--resume", "--out", str(tmp_path / "no_such_run")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"resnet-parity train: error: --resume: no run at {tmp_path / 'no_such_run'} (no run.json in it)"
    )


def test_a_library_refusal_is_decided_before_a_framework_loads(tmp_path):
    """`convert r18.safetensors r18.keras --to keras-applications` refused resnet18 only after importing TensorFlow."""
    from tests.conftest import run_python

    path = _tiny_file(tmp_path, "r18.safetensors", lambda w: None)
    code = (
        "import sys\nfrom parity.cli import main\n"
        f"code = main(['convert', {str(path)!r}, {str(tmp_path / 'r18.keras')!r}, '--to', 'keras-applications'])\n"
        "print(code, ','.join(m for m in ('torch', 'keras', 'tensorflow', 'jax') if m in sys.modules))\n"
    )
    done = run_python(code)
    assert done.stdout.split() == ["2"], done.stdout + done.stderr  # refused, and no framework was imported
    assert "cannot write resnet18 for keras-applications: keras.applications builds resnet50" in done.stderr


def test_long_commands_say_each_step_where_stderr_is_a_log_and_quiet_silences(tmp_path, capsys):
    """With stderr not a terminal (a CI log), summary, convert and the others printed nothing for minutes."""
    assert main(["summary", "--arch", "resnet18", "--set", "widths=4,8,16,32"]) == 0
    assert capsys.readouterr().err.splitlines() == ["building resnet18 in torch ...", "building resnet18 in keras ..."]
    path = _tiny_file(tmp_path, "r18.safetensors", lambda w: None)
    assert main(["convert", str(path), str(tmp_path / "r18.npz")]) == 0
    assert capsys.readouterr().err.splitlines()[0] == f"converting {path} -> {tmp_path / 'r18.npz'} ..."
    assert main(["convert", str(path), str(tmp_path / "again.npz"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_the_smaller_things(tmp_path, capsys):
    import parity
    from parity.spec import layout_name, make_spec

    path = _tiny_file(tmp_path, "r18.safetensors", lambda w: None)
    # a folder library into a file's name made a folder called r18.safetensors
    assert main(["convert", str(path), str(tmp_path / "hf.safetensors"), "--to", "transformers"]) == 2
    assert "transformers writes a folder (config.json beside the weights), and this name is a safetensors file's" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "hf.safetensors").exists()
    # timm's and keras.applications' presets were labelled "(torchvision)"
    assert [layout_name(make_spec(a)) for a in ("resnet50", "resnet50d", "resnet50v2", "seresnet50")] == [
        "torchvision",
        "timm",
        "keras.applications",
        "timm",
    ]
    # load_model gave a torch module in training mode (100 % off timm's output until .eval())
    assert not parity.load_model(path, backend="torch").training
    # --threads beyond the CPUs was taken without a word
    assert main(["summary", "--threads", "999"]) == 2
    assert "--threads 999: this process may use" in capsys.readouterr().err
    # an argparse mistake printed the whole usage
    with pytest.raises(SystemExit) as info:
        main(["check", "--size", "x"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "resnet-parity check: error: argument --size: invalid positive value: 'x' (see resnet-parity check --help)\n"
    )


def test_a_family_the_spec_does_not_describe_is_not_sent_to_the_flags(tmp_path, capsys):
    """The advice "pass --arch/--variant" was given where no flag can help: every preset was already tried."""
    from safetensors.numpy import save_file

    from parity.io.weights import random_weights
    from parity.spec import make_spec

    weights = random_weights(make_spec("seresnet18", widths=(4, 8, 16, 32)), 0)
    save_file({k.replace(".se.fc", ".se.conv_"): v for k, v in weights.items()}, str(tmp_path / "other_se.safetensors"))
    assert main(["check", "--weights", str(tmp_path / "other_se.safetensors")]) == 2
    err = capsys.readouterr().err
    assert (
        "no --arch or --variant reads it: it is a family the spec does not describe" in err and "pass --arch" not in err
    )
