"""parity.core.files: a failed write leaves nothing behind and never clobbers without force."""

from __future__ import annotations

import os

import pytest

from parity.core.files import atomic_write, atomic_write_text, check_target


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.onnx"

    def half_then_fail(tmp):
        tmp.write_bytes(b"half a file")
        raise RuntimeError("exporter crashed")

    with pytest.raises(RuntimeError, match="exporter crashed"):
        atomic_write(target, half_then_fail)
    assert os.listdir(tmp_path) == []


def test_empty_write_is_an_error(tmp_path):
    with pytest.raises(OSError, match="produced no data"):
        atomic_write(tmp_path / "x.bin", lambda tmp: None)
    assert os.listdir(tmp_path) == []


def test_existing_file_needs_force(tmp_path):
    target = tmp_path / "m.keras"
    target.write_text("old")
    with pytest.raises(FileExistsError, match="m.keras exists; pass --force"):
        atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "old"
    atomic_write(target, lambda tmp: tmp.write_text("new"), force=True)
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["m.keras"]


def test_written_file_has_the_usual_mode(tmp_path):
    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "r.md", "x")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_temporary_name_keeps_the_extension(tmp_path):
    seen = []
    atomic_write(tmp_path / "w.weights.h5", lambda tmp: (seen.append(tmp.name), tmp.write_text("x")))
    assert seen[0].endswith("-w.weights.h5")


def test_bad_targets(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_target(tmp_path / "missing" / "a.json")
    with pytest.raises(IsADirectoryError):
        check_target(tmp_path)
    atomic_write_text(tmp_path / "r.json", "{}")
    atomic_write_text(tmp_path / "r.json", "[]")  # reports overwrite by default
    assert (tmp_path / "r.json").read_text() == "[]"
