"""What the frameworks print of their own: silenced unless `--verbose`, never by changing what they compute.

TensorFlow (imported with Keras) writes a start-up block to the process's stderr from C++, before its logging is set
up, so `TF_CPP_MIN_LOG_LEVEL` does not reach it: "All log messages before absl::InitializeLog() ..." and "oneDNN
custom operations are on" twice per process. `quiet_imports()` points file descriptor 2 at /dev/null while a
framework is imported and restores it after; the oneDNN setting itself is left as it is (turning it off would
change the numbers).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

_VERBOSE: list[bool] = [False]


def set_verbose(verbose: bool) -> None:
    """`--verbose`: let the frameworks print what they print (imports, their Python loggers)."""
    _VERBOSE[:] = [verbose]


def verbose() -> bool:
    return _VERBOSE[0]


@contextlib.contextmanager
def quiet_imports() -> Iterator[None]:
    """Silence what the block's imports write to stderr from native code (unless --verbose); an exception still
    reaches the caller, and Python's own stderr is untouched after the block."""
    if _VERBOSE[0]:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 (an embedded interpreter): nothing to silence
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # its retracing notes, from Python
