"""One registry per kind in parity.io: formats (extension, reader, writer, backend) and libraries (detect, read,
write, refusal by round trip); the CLI's lists and choices come from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.cli import build_parser, main
from parity.io.checkpoints import write_checkpoint
from parity.io.formats import EXTENSIONS, FORMATS, format_named, format_of
from parity.io.libraries import LIBRARIES, library_named, library_of
from parity.io.weights import random_weights
from parity.spec import make_spec

FIXTURES = Path(__file__).parents[2] / "fixtures"


def test_every_extension_names_its_format_and_the_longest_wins():
    for fmt in FORMATS:
        for extension in fmt.extensions:
            assert format_of(f"model{extension}") is fmt
    assert format_of("m.weights.h5").name == "keras-weights" and format_of("m.h5").name == "keras-h5"
    assert list(EXTENSIONS) == sorted(EXTENSIONS, key=len, reverse=True)
    assert format_named("keras-h5").write is None and "never written" in format_named("keras-h5").refusal
    with pytest.raises(ValueError, match=r"m.ckpt: unknown checkpoint format; use one of .pth, .pt, .safetensors"):
        format_of("m.ckpt")


def test_the_cli_derives_its_choices_and_lists_from_the_registries(capsys):
    convert = build_parser("convert")._subparsers._group_actions[0].choices["convert"]
    to = next(a for a in convert._actions if a.dest == "to")
    assert to.choices == list(LIBRARIES) == ["transformers", "timm", "keras-hub", "keras-applications"]
    help_text = convert.format_help()
    assert all(ext in help_text for ext in (".safetensors", ".weights.h5", ".keras"))
    export = build_parser("export")._subparsers._group_actions[0].choices["export"]
    assert next(a for a in export._actions if a.dest == "backend").choices == ["torch", "keras"]


@pytest.mark.parametrize(
    "name, spec",
    [
        ("transformers", make_spec("resnet50", widths=(8, 16, 32, 64), num_classes=4, stride_on="v1")),
        ("timm", make_spec("resnet50d", widths=(4, 8, 16, 32), stem_width=16, deep_stem_width=8, num_classes=3)),
        ("keras-hub", make_spec("resnet18", num_classes=0, pooling=None, in_channels=1)),
        ("keras-applications", make_spec("resnet50v2", num_classes=0, pooling="max")),
    ],
)
def test_a_library_holds_what_its_round_trip_gives_back(name, spec):
    library = library_named(name)
    assert library.refusal(spec) is None
    assert not spec.differences(library.spec_of(library.describe(spec)))


def test_a_refusal_names_the_first_field_the_round_trip_changes():
    eps = make_spec("resnet18", bn_eps=1e-3)
    assert LIBRARIES["transformers"].refusal(eps) == "transformers' ResNet has no bn_eps=0.001 (it builds bn_eps=1e-05)"
    assert LIBRARIES["keras-applications"].refusal(make_spec("resnet50", "keras_applications", bn_eps=1e-5)) == (
        "keras.applications' ResNet50 has no bn_eps=1e-05 (it builds bn_eps=1.001e-05)"
    )
    assert LIBRARIES["timm"].refusal(make_spec("resnet50v2")).startswith("timm has no resnet50v2")


def test_each_library_recognises_its_own_folders_and_files_only():
    found = {
        "hf/resnet18-gray": "transformers",
        "hf/resnet18-gray/model.safetensors": "transformers",
        "timm/resnet50d_tiny_hub": "timm",
        "keras_hub/resnet_vd_narrow": "keras-hub",
        "keras_hub/resnet_vd_narrow/model.weights.h5": "keras-hub",
        "timm/resnet50d_tiny.pth": None,  # a bare state dict: a checkpoint format
    }
    for path, name in found.items():
        library = library_of(FIXTURES / path)
        assert (library.NAME if library else None) == name, path


def test_convert_and_check_take_num_classes_0_alike(tmp_path, capsys):
    spec = make_spec("resnet18", widths=(4, 8, 16, 32), num_classes=10)
    path = write_checkpoint(random_weights(spec, 0), tmp_path / "r18.npz", spec)
    assert main(["convert", str(path), str(tmp_path / "out.pt"), "--num-classes", "0"]) == 2
    convert_says = capsys.readouterr().err.split("error: ")[1]
    assert main(["check", "--weights", str(path), "--num-classes", "0", "--quiet"]) == 2
    check_says = capsys.readouterr().err.split("error: ")[1]
    assert convert_says == check_says == f"--num-classes 0, but {path} holds 10 (fc.weight is (10, 32))\n"
