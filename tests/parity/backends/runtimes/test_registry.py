"""The runtime registry: one interface, each runtime made once; what is missing, refused or fails is one line."""

from __future__ import annotations

import importlib.util
import inspect

import pytest

from parity.backends import runtimes
from parity.backends.runtimes import RUNTIME_NAMES, missing, parse_runtimes, runtime_named
from parity.backends.runtimes.interface import PRECISIONS, Runtime
from parity.checks.runtimes import runtime_rows
from parity.cli import main
from parity.core.errors import Unavailable
from tests.conftest import run_python
from tests.parity.backends.runtimes.conftest import SPEC


@pytest.mark.parametrize("name", RUNTIME_NAMES)
def test_each_installed_runtime_is_one_interface_made_once(name):
    if missing(name):
        pytest.skip(missing(name))
    runtime = runtime_named(name)
    assert isinstance(runtime, Runtime) and not inspect.isabstract(type(runtime)) and name == runtime.NAME
    assert runtime_named(name) is runtime and runtime.version()
    assert set(runtime.ROUTES) == set(runtime.TAKES)  # a route named for every source it takes
    runtime.check_precision("fp32")
    runtime.check_precision(None)  # its own default
    for precision in set(PRECISIONS) - set(runtime.PRECISIONS):
        with pytest.raises(ValueError, match=f"^{name} cannot be asked for {precision} here; it takes fp32"):
            runtime.check_precision(precision)
    assert set(runtime.LOWERS) <= set(runtime.PRECISIONS) <= set(PRECISIONS)


def test_registry_imports_no_runtime_package():
    code = (
        "import sys\nimport parity.backends.runtimes as r\nr.missing('openvino'); r.parse_runtimes('all')\n"
        "print([m for m in ('onnxruntime', 'openvino', 'ai_edge_litert', 'executorch', 'torch', 'tensorflow') "
        "if m in sys.modules])"
    )
    done = run_python(code)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]


def test_a_runtime_not_installed_names_its_extra(pair, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    line = (
        "openvino: openvino is not installed; pip install 'resnet-parity[openvino]' (or [runtimes] for every runtime)"
    )
    assert missing("openvino") == line
    monkeypatch.setattr(runtimes, "_MADE", {})
    with pytest.raises(Unavailable, match="resnet-parity\\[openvino\\]"):
        runtime_named("openvino")
    # named on the command line: refused before any work, one line, exit 2
    assert main(["check", "--arch", "resnet18", "--size", "32", "--runtime", "openvino"]) == 2
    err = capsys.readouterr().err
    assert line in err and "Traceback" not in err
    # within 'all', what is installed runs and what is not is a skipped row saying the same line
    t, _, x = pair
    (row,) = runtime_rows(["openvino"], t, [t], x)
    assert row.skipped == line and row.passed and row.diff is None


def test_wrong_runtime_names_are_refused_by_name(capsys):
    with pytest.raises(ValueError, match="--runtime tensorrt: no such runtime; choose from all, onnxruntime"):
        parse_runtimes("onnxruntime,tensorrt")
    assert parse_runtimes("saved_model,onnxruntime") == ["onnxruntime", "saved_model"]  # the registry's order
    with pytest.raises(SystemExit):
        main(["check", "--runtime", "tensorrt"])
    assert "argument --runtime: no such runtime; choose from all, onnxruntime" in capsys.readouterr().err


def test_an_export_that_fails_is_one_line_and_leaves_nothing(pair, monkeypatch, tmp_path):
    import tempfile

    t, k, x = pair
    runtime = runtime_named("onnxruntime")

    def broken(source, model, folder, shape, dynamic):
        (folder / "half-written.onnx").write_bytes(b"\0")
        raise RuntimeError("Unsupported ops: Foo\nmore lines of the converter's own trace")

    monkeypatch.setattr(runtime, "export", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (row,) = runtime_rows(["onnxruntime"], t, [t], x)
    assert row.error == "onnxruntime from torch: RuntimeError: Unsupported ops: Foo" and not row.passed
    assert row.verdict == "ERROR" and row.diff is None
    assert not list(tmp_path.glob("resnet-parity-runtime-*"))  # the row's folder, and what was in it, removed
    assert SPEC.name == row.arch
