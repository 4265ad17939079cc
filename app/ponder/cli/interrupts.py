"""Ctrl-C: a quiet exit while modules import, a cancel event while work runs.

While Python imports modules (click, the session, llama.cpp: most of the first
second of a command) a Ctrl-C has nothing to save, and a ``KeyboardInterrupt``
raised in the middle of an import can surface as a traceback. There the handler
prints ``ponder: interrupted`` and exits 130 at once. Around generation and
downloads, Ctrl-C sets a cancel event instead, so the partial work is kept.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from ponder.cli.quiet import exit_quietly


@contextmanager
def quiet_while_importing() -> Iterator[None]:
    """Around heavy imports: Ctrl-C exits 130 quietly, then the handler goes back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, exit_quietly)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


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
