"""SIGINT (Ctrl-C) and SIGTERM end a command the same way: the measuring processes it started are ended at once,
every completed record is kept, and the command exits 130 (SIGINT) or 143 (SIGTERM), as shells report them.

The handlers run in the main thread. They first mark the process as stopping, so a measurement that fails because
its agent was just ended is known as interrupted (never recorded as a failure of the artifacts), then end every
registered child (a local agent process, an SSH connection whose channel runs a remote agent), then raise
KeyboardInterrupt (``Terminated`` for SIGTERM) where the command's Ctrl-C handling already is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from csibench.errors import CsibenchError

EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: every ``except KeyboardInterrupt`` handles both alike."""


class StoppedError(CsibenchError):
    """A measurement not started, or whose agent was ended, because csibench is stopping on a signal."""


_stopping = threading.Event()
_children: dict[int, Callable[[], None]] = {}  # id → how to end it at once
_lock = threading.RLock()  # re-entrant: the handler runs in the main thread, which may hold it when the signal comes


def install() -> None:
    """Route SIGINT and SIGTERM through ``_on_signal`` (call from the main thread, before the command runs)."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def _on_signal(signum: int, _frame) -> None:
    _stopping.set()
    end_children()
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def exit_now(code: int) -> None:
    """Exit at once once a stopped command has recorded and said everything: the interpreter's teardown (torch's
    alone takes 1.7 s) would delay the exit a user or a service manager waits for. Databases and files are closed by
    then (their context managers ran); only the standard streams need flushing."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def stopping() -> bool:
    """True once a signal asked this process to stop: no new measurement starts, a failing one is not a failure."""
    return _stopping.is_set()


def exit_code(exc: BaseException) -> int:
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


def signal_name(exc: BaseException) -> str:
    return "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"


def end_children() -> None:
    with _lock:
        stops = list(_children.values())
    for stop in stops:
        with contextlib.suppress(Exception):  # already gone, or a socket already closed: nothing left to end
            stop()


@contextlib.contextmanager
def child(stop: Callable[[], None]) -> Iterator[None]:
    """While inside, ``stop`` is called if a signal comes; refused (``StoppedError``) once stopping."""
    key = id(stop)
    with _lock:
        if _stopping.is_set():
            stop()
            raise StoppedError("not started: csibench is stopping on a signal")
        _children[key] = stop
    try:
        yield
    finally:
        with _lock:
            _children.pop(key, None)
