"""The core both front ends call: open a model, reply, and reach models, chats and pulls.

* :mod:`.spec` — what a model reference names and how to prompt it (:class:`ModelSpec`).
* :mod:`.core` — :class:`Session`: the services and the whole operations on them.
* :mod:`.loading` — load parameters from a plan, and the out-of-memory step-down.
* :mod:`.loaded` — :class:`LoadedModel` and its :meth:`~LoadedModel.reply` use case.
* :mod:`.reply` — :class:`Reply`: the typed events of one reply and its live text.
* :mod:`.turns` — a saved chat's turns as they go back to the model.
* :mod:`.machine` — this machine's reports: doctor, fit, the recommendation.
* :mod:`.factory` — :func:`open_session`, the session over the user's own files.

Front ends import from here and from the basics (events, errors, units, paths,
config, sampling, chat settings), never from the services below. The chat history's
records (:class:`Chat`, :class:`Message`, :class:`Candidate`, ...) are re-exported for
them; the history itself is reached through :meth:`Session.require_history`.
"""

from ponder.chat_settings import ChatSettings
from ponder.history import (
    Candidate,
    Chat,
    ChatSummary,
    History,
    HistoryError,
    Message,
    SearchHit,
)
from ponder.session.core import OnEvent, RunRequest, Session
from ponder.session.factory import open_session
from ponder.session.loaded import LoadedModel, ReplyRequest
from ponder.session.loading import ModelOptions
from ponder.session.local_model import LocalModel
from ponder.session.local_source import WRAP_UP_TEXT
from ponder.session.reply import LiveText, LiveUpdate, Reply
from ponder.session.spec import ModelSpec, NotInstalledError
from ponder.session.turns import chat_turns
from ponder.session.vote_reply import VoteReply

__all__ = [
    "WRAP_UP_TEXT",
    "Candidate",
    "Chat",
    "ChatSettings",
    "ChatSummary",
    "History",
    "HistoryError",
    "LiveText",
    "LiveUpdate",
    "LoadedModel",
    "LocalModel",
    "Message",
    "ModelOptions",
    "ModelSpec",
    "NotInstalledError",
    "OnEvent",
    "Reply",
    "ReplyRequest",
    "RunRequest",
    "SearchHit",
    "Session",
    "VoteReply",
    "chat_turns",
    "open_session",
]
