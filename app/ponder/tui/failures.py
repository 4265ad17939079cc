"""One way from a worker's failure to what the user reads.

Every thread worker of the UI (loading a model, a reply, a download, an import, the
hardware probe) runs its body under :func:`reported`: whatever it raises reaches the
worker's ``failed`` callback as the :class:`PonderError` to show, a PonderError as
it is and anything else by its type and text (logged, since it is a bug), so the UI
shows it instead of crashing. :func:`notify_error` is how an error is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from textual.app import App
from textual.message_pump import MessagePump

from ponder.errors import PonderError


def shown(exc: Exception) -> PonderError:
    """The error the user reads for ``exc``."""
    if isinstance(exc, PonderError):
        return exc
    return PonderError(f"{type(exc).__name__}: {exc}")


@contextmanager
def reported(worker: MessagePump, failed: Callable[[PonderError], object]) -> Iterator[None]:
    """Run a worker's body; what it raises goes to ``failed`` as the error to show."""
    try:
        yield
    except Exception as exc:  # the UI shows it instead of crashing
        if not isinstance(exc, PonderError):
            worker.log.error(f"a worker of {worker!r} failed: {exc!r}")
        failed(shown(exc))


def notify_error(app: App[Any], error: PonderError, *, title: str = "Error") -> None:
    """Show ``error`` (and its hint) as an error notification."""
    text = error.message + (f"\n{error.hint}" if error.hint else "")
    app.notify(text, title=title, severity="error", timeout=12)
