"""Atomic file output: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def check_target(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Validate an output path before any work is done; return it as a Path.

    Raises FileExistsError if it exists and `force` is false, NotADirectoryError /
    FileNotFoundError if its folder is missing, PermissionError if the folder is not writable.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"output path {target} is a directory")
    return _check_new(target, force)


def _check_new(target: Path, force: bool) -> Path:
    """`target` may be (re)written: absent or `force`, its folder there and writable."""
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; pass --force (force=True) to overwrite it")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} of output path {target} does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"folder {folder} of output path {target} is not writable")
    return target


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object], force: bool = False) -> Path:
    """Call `write(tmp_path)` and move the result to `path` only if it succeeds.

    A failure (an exception in `write`, or nothing written) leaves no file at `path` and no
    temporary file behind; an existing file at `path` is replaced only with `force`.

    Args:
        path: the target file.
        write: writes the whole file at the path it is given.
        force: allow replacing an existing file.
    """
    target = check_target(path, force)
    # The temporary name ends with the target's name: some writers check the extension
    # (Keras wants `.keras` / `.weights.h5`).
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{target.name}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise OSError(f"writing {target} produced no data")
        # mkstemp makes the file 0600; give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def atomic_folder(path: str | os.PathLike[str], write: Callable[[Path], object], force: bool = False) -> Path:
    """Call `write(tmp_folder)` and rename the folder to `path` only if it succeeds (a model folder: config
    and weights appear together or not at all); an existing folder is replaced only with `force`.

    Args:
        path: the target folder.
        write: fills the (empty) folder it is given.
        force: allow replacing an existing folder.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"output path {target} is a file; a model folder goes there")
    _check_new(target, force)
    parent = target.parent if str(target.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=parent))
    old = None
    try:
        write(tmp)
        os.chmod(tmp, 0o777 & ~_umask())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{target.name}-", dir=parent))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not target.exists():
            os.replace(old / target.name, target)  # put the previous folder back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target


def make_writable_folder(path: str | os.PathLike[str], option: str) -> Path:
    """Create a folder for a command's output (parents too) and prove it takes a file, or refuse in one line
    naming `option`, the folder and the system's reason (a read-only file system, a file in the way)."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-")
        probe.close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PermissionError(f"{option} {folder}: cannot write there ({reason})") from None
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str, force: bool = True) -> Path:
    """Atomically write a text file (reports are overwritten by default)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), force=force)


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write a matplotlib figure as PNG, atomically, and close it (also when writing fails)."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110), force=True)
    finally:
        plt.close(fig)
