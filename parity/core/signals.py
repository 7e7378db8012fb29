"""Ctrl-C and SIGTERM end a command the same way: cleanup runs, one line, no half-written file, no orphan.

Python turns SIGINT into KeyboardInterrupt but dies on SIGTERM without running `finally` blocks (a temporary
file stays, child processes keep running). `interruptible()` makes both raise KeyboardInterrupt and records
which arrived, so the exit status is 128 + its number, as a shell reports a signal. `forwarded(group)` is for a
parent that waits on a launcher (torchrun): either signal stops the launcher's whole process group and the
parent keeps waiting until the group has exited.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
RECEIVED: list[int] = []
# Set in the environment of the processes `forwarded` waits on: the parent speaks for them on an interrupt.
LAUNCHED = "PARITY_LAUNCHED"


def _raise(signum: int, frame: FrameType | None) -> None:
    RECEIVED.append(signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _handlers(handler: signal.Handlers | object) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, handler)  # type: ignore[arg-type]
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM raise KeyboardInterrupt; the previous handlers come back after."""
    RECEIVED.clear()
    with _handlers(_raise):
        yield


@contextlib.contextmanager
def held() -> Iterator[None]:
    """SIGINT and SIGTERM held for the block and taken as it ends: the first one then raises KeyboardInterrupt.

    For native work a signal must not land in: blocked in this thread (a system call of the main thread is not
    interrupted), and recorded rather than raised by the Python handler, which runs in the main thread whichever
    thread the kernel gave the signal to (a KeyboardInterrupt raised inside a converter's callback came out as the
    converter's own error, with its trace, measured in OpenVINO's Keras frontend).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        arrived.append(signum)
        RECEIVED.append(signum)

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        with _handlers(record):
            yield
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # what is pending now reaches `record`
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    if arrived:
        raise KeyboardInterrupt


def exit_status() -> int:
    """128 + the signal that interrupted the command (SIGINT when none was recorded: a KeyboardInterrupt)."""
    return 128 + (RECEIVED[-1] if RECEIVED else signal.SIGINT)


def launched() -> bool:
    """This process was started by a parent that waits on it and reports its interrupt (see `forwarded`)."""
    return os.environ.get(LAUNCHED) == "1"


@contextlib.contextmanager
def forwarded(group: int) -> Iterator[list[int]]:
    """Inside the block SIGINT and SIGTERM stop process group `group` (started with `start_new_session`) and are
    recorded in the yielded list instead of raising, so the caller keeps waiting for the group to exit.

    Both reach the group as SIGTERM: a process still starting (before `interruptible`) dies of it silently,
    where SIGINT would print Python's KeyboardInterrupt traceback; a started one ends as on Ctrl-C.
    """
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        RECEIVED.append(signum)
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group has already exited
            os.killpg(group, signal.SIGTERM)

    with _handlers(forward):
        yield received
