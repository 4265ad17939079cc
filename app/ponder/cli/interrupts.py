"""Ctrl-C: a quiet exit while modules import, a cancel event while work runs.

While Python imports modules (click, the session, llama.cpp: most of the first
second of a command) a Ctrl-C has nothing to save, and a ``KeyboardInterrupt``
raised in the middle of an import can surface as a traceback. There the handler
prints ``ponder: interrupted`` and exits 130 at once. Around generation and
downloads, Ctrl-C sets a cancel event instead, so the partial work is kept.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn

from ponder.cli.errors import INTERRUPTED
from ponder.errors import ExitCode

Handler = Callable[[int, FrameType | None], Any] | int | None


def exit_quietly(signum: int, frame: FrameType | None) -> NoReturn:
    """A SIGINT handler for stretches that only import: one line, exit 130."""
    os.write(sys.__stderr__.fileno() if sys.__stderr__ else 2, f"{INTERRUPTED}\n".encode())
    os._exit(ExitCode.INTERRUPTED)


def install(handler: Handler) -> Handler | None:
    """Set the SIGINT handler; the previous one, or None off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous: Handler = signal.signal(signal.SIGINT, handler)
    # None: a handler not set from Python; Python's own is the nearest we can restore.
    return signal.default_int_handler if previous is None else previous


@contextmanager
def quiet_while_importing() -> Iterator[None]:
    """Around heavy imports: Ctrl-C exits 130 quietly, then the handler goes back."""
    previous = install(exit_quietly)
    try:
        yield
    finally:
        if previous is not None:
            install(previous)


@contextmanager
def cancel_on_sigint() -> Iterator[threading.Event]:
    """First Ctrl-C: stop after the current token. A second one: stop at once."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)
