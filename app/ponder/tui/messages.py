"""Messages the worker threads post to the UI, named for what has happened.

Download progress may replace an earlier message of its kind still waiting in the
queue, so a backlog collapses instead of growing. A reply's text does not travel in
messages at all: the chat screen reads it from the reply's state (see chat.py).
"""

from __future__ import annotations

from textual.message import Message

from ponder.errors import PonderError
from ponder.events import DownloadProgress, Finished
from ponder.hardware import Plan
from ponder.session import ModelSpec, ReplyState


class ModelLoaded(Message):
    def __init__(self, spec: ModelSpec, plan: Plan) -> None:
        super().__init__()
        self.spec = spec
        self.plan = plan


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
    def __init__(self, chat_id: int | None, message_id: int | None, state: ReplyState) -> None:
        super().__init__()
        self.chat_id = chat_id
        self.message_id = message_id
        self.state = state


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
