"""The messages between the app, its screens and its workers.

Past tense for what has happened: a worker tells the app or its screen
(:class:`ModelLoaded`, :class:`ReplyFinished`, :class:`DownloadEnded`, ...), and the
app tells the screens (:class:`ModelChanged`, :class:`DownloadsChanged`), each with
what a screen needs to show it. ``...Requested`` for what a screen asks of the app,
which owns the loaded model and the downloads and may refuse (a model switch while a
reply streams).

Download progress may replace an earlier message of its kind still waiting in the
queue, so a backlog collapses instead of growing. A reply's text does not travel in
messages at all: the conversation reads it from the reply's live text (see
:mod:`ponder.tui.widgets.stream`).
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.message import Message

from ponder.errors import PonderError
from ponder.events import DownloadProgress, Finished
from ponder.session import LoadedModel, Reply
from ponder.tui.downloads import DownloadState

# -- from the workers ----------------------------------------------------------------


class ModelLoaded(Message):
    def __init__(self, model: LoadedModel) -> None:
        super().__init__()
        self.model = model


class ModelLoadFailed(Message):
    def __init__(self, name: str, error: PonderError) -> None:
        super().__init__()
        self.name = name
        self.error = error


class ModelNoticed(Message):
    """Something the user should know while a model loads (an out-of-memory retry)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ReplyStarted(Message):
    def __init__(self, reply: Reply) -> None:
        super().__init__()
        self.reply = reply


class ReplyFinished(Message):
    def __init__(self, finished: Finished) -> None:
        super().__init__()
        self.finished = finished


class ReplyFailed(Message):
    def __init__(self, error: PonderError) -> None:
        super().__init__()
        self.error = error


class DownloadProgressed(Message):
    def __init__(self, name: str, progress: DownloadProgress) -> None:
        super().__init__()
        self.name = name
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DownloadProgressed) and message.name == self.name


class DownloadEnded(Message):
    """A download finished, was cancelled, or failed (``error``)."""

    def __init__(self, name: str, *, installed: bool, error: PonderError | None = None) -> None:
        super().__init__()
        self.name = name
        self.installed = installed
        self.error = error


# -- from the app to the screens -------------------------------------------------------


class ModelChanged(Message):
    """The loaded model, or the one on its way in (``loading``), changed."""

    def __init__(self, model: LoadedModel | None, loading: str | None) -> None:
        super().__init__()
        self.model = model
        self.loading = loading


class DownloadsChanged(Message):
    """Any download moved; ``downloads`` are all of them as they stand now."""

    def __init__(self, downloads: Mapping[str, DownloadState]) -> None:
        super().__init__()
        self.downloads = downloads

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DownloadsChanged)


# -- from the screens to the app -------------------------------------------------------


class LoadModelRequested(Message):
    """Load ``name`` (with a context of ``n_ctx`` tokens, else as planned)."""

    def __init__(self, name: str, *, n_ctx: int | None = None) -> None:
        super().__init__()
        self.name = name
        self.n_ctx = n_ctx


class DownloadRequested(Message):
    """Start ``name``'s download, or resume it where it stopped."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class DownloadCancelRequested(Message):
    """Pause ``name``'s download; its partial files stay for a resume."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class DownloadDiscardRequested(Message):
    """Forget ``name``'s paused or failed download and delete its partial files."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
