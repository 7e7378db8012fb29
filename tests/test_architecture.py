"""The architecture as CI checks it: import contracts, no cycles, the ruff lint, a light CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("parity", "resnet_torch", "resnet_keras")


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (it is in the dev extra)")
    return found


def test_import_contracts_hold():
    """pyproject.toml's import-linter contracts: layers, the framework seam, the model packages."""
    done = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_import_cycle_among_project_modules():
    import grimp

    graph = grimp.build_graph(*PROJECT)
    modules = sorted(graph.modules)
    edges = {
        m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] in PROJECT) for m in modules
    }
    # A package imports its own submodules from its __init__: that is not a cycle of code.
    edges = {
        m: [i for i in targets if not i.startswith(m + ".") and not m.startswith(i + ".")]
        for m, targets in edges.items()
    }
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in edges[module]:
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in modules:
        if module not in state:
            visit(module, [module])
    assert not cycles, [" -> ".join(c) for c in cycles]


def test_ruff_lint_and_format_pass():
    """`ruff check` and `ruff format --check`, as configured in pyproject.toml."""
    ruff = _tool("ruff")
    lint = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-4000:]
    formatted = subprocess.run([ruff, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert formatted.returncode == 0, formatted.stdout[-4000:]


def test_the_type_checker_passes():
    """mypy as configured in pyproject.toml: strict on parity.spec and parity.core, default elsewhere."""
    done = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout


def test_no_parity_module_exceeds_400_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "parity").rglob("*.py")}
    assert max(sizes.values()) <= 400, {p: n for p, n in sizes.items() if n > 400}


def test_cli_modules_are_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "parity" / "cli").glob("*.py")}
    assert sizes and max(sizes.values()) <= 300, sizes


def test_help_imports_no_framework_and_answers_fast():
    code = (
        "import sys, time\nstart = time.perf_counter()\nfrom parity.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(time.perf_counter() - start)\n"
        "print(','.join(m for m in ('torch', 'keras', 'tensorflow', 'jax') if m in sys.modules))\n"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    *_, seconds, loaded = done.stdout.split("\n")[:-1]
    assert loaded == "", f"--help imported {loaded}"
    assert float(seconds) < 1.0 and wall < 5.0, (seconds, wall)
