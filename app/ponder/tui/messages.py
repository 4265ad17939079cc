"""Messages the worker threads post to the UI, named for what has happened.

Download progress may replace an earlier message of its kind still waiting in the
queue, so a backlog collapses instead of growing. A reply's text does not travel in
messages at all: the chat screen reads it from the reply's live text (see chat.py).
"""

from __future__ import annotations

from textual.message import Message

from ponder.errors import PonderError
from ponder.events import DownloadProgress, Finished
from ponder.session import LoadedModel, Reply


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


class DownloadsChanged(Message):
    """Sent to screens that show downloads when any of them moved."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DownloadsChanged)
