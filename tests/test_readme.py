"""The README's two set-up commands stay true: CI runs the test one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [b.strip() for b in blocks if "pip install" in b]


def test_ci_runs_the_readme_test_command():
    main_job, tests = readme_commands()[:2]
    assert "python -m pytest -q" in tests
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert tests in ci_lines


def test_main_job_command_runs_the_check_on_defaults():
    main_job = readme_commands()[0]
    assert main_job.endswith("&& resnet-parity check")
    assert "-c .ci/constraints.txt" in main_job
    assert "torch==2.13.0" in (ROOT / ".ci/constraints.txt").read_text()


def test_the_files_contributing_md_names_exist():
    """CONTRIBUTING.md counts files a change touches; every path it names is a file or folder of the tree."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    named = re.findall(r"`([\w./<>-]+\.(?:py|toml|md))`", text)
    paths = {p for p in named if "<" not in p and ("/" in p or p == "pyproject.toml")}  # not a bare module name
    paths |= {p.rstrip("/") for p in re.findall(r"`((?:parity|resnet_\w+|tests)/[\w/]*/)`", text) if "<" not in p}
    assert len(paths) > 20, paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, missing
