"""What the chat store hands out: chats, their messages, a voted reply's candidates, and
search hits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MessageStatus = Literal["complete", "streaming", "interrupted", "length", "error"]
Role = Literal["user", "assistant"]
SearchOrder = Literal["newest", "rank"]


@dataclass(frozen=True)
class Candidate:
    """One sampled candidate of a voted reply (``ponder run --votes N``).

    ``index`` is 0-based, in the order the candidates were started; ``content`` is its
    answer and ``extracted`` the normalised final answer it voted for (None: it gave
    none). The winner's text is also the reply itself.
    """

    index: int
    content: str
    reasoning: str
    extracted: str | None
    status: str
    finish_reason: str | None
    reasoning_tokens: int | None
    answer_tokens: int | None
    timings: dict[str, object]
    created_at: str


@dataclass(frozen=True)
class Message:
    """One turn. For an assistant turn ``content`` is the answer proper; a voted reply
    also has its ``candidates``, in index order (empty for every other turn)."""

    id: int
    chat_id: int
    role: Role
    content: str
    reasoning: str
    model: str | None
    status: str
    finish_reason: str | None
    params: dict[str, object]
    timings: dict[str, object]
    prompt_tokens: int | None
    reasoning_tokens: int | None
    answer_tokens: int | None
    created_at: str
    candidates: tuple[Candidate, ...] = ()


@dataclass(frozen=True)
class ChatSummary:
    id: int
    title: str
    model: str | None
    created_at: str
    updated_at: str
    message_count: int


@dataclass(frozen=True)
class Chat:
    summary: ChatSummary
    system_prompt: str | None
    messages: list[Message]
    settings: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchHit:
    """A matching message; ``snippet`` has the matched words between the marks."""

    chat_id: int
    message_id: int
    chat_title: str
    role: str
    snippet: str
    created_at: str
