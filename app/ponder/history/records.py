"""What the chat store hands out: chats, their messages, and search hits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MessageStatus = Literal["complete", "streaming", "interrupted", "length", "error"]
Role = Literal["user", "assistant"]
SearchOrder = Literal["newest", "rank"]


@dataclass(frozen=True)
class Message:
    """One turn. For an assistant turn ``content`` is the answer proper."""

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
