"""A chat as Markdown, or as a ``ponder.chat`` document (its format: the package docstring)."""

from __future__ import annotations

from datetime import UTC, datetime

from ponder.history.records import Chat, Message

EXPORT_FORMAT = "ponder.chat"
EXPORT_VERSION = 1

_STATUS_NOTES = {
    "interrupted": "*[Interrupted: this reply was cut off before it finished.]*",
    "streaming": "*[Still being written when this was exported.]*",
    "length": "*[Stopped at the token limit: this reply is incomplete.]*",
    "error": "*[An error ended this reply early.]*",
}


def render_markdown(chat: Chat) -> str:
    """Markdown for a chat: a header, then each turn in order."""
    parts = [_markdown_header(chat)]
    parts.extend(_markdown_turn(message) for message in chat.messages)
    return "\n\n".join(parts).rstrip() + "\n"


def _markdown_header(chat: Chat) -> str:
    summary = chat.summary
    lines = [
        f"# {summary.title}",
        "",
        f"- Model: {summary.model or 'unknown'}",
        f"- Date: {_readable_time(summary.created_at)}",
        f"- Chat: #{summary.id}",
    ]
    if chat.system_prompt:
        lines += ["", "**System prompt**", "", _blockquote(chat.system_prompt)]
    return "\n".join(lines)


def _markdown_turn(message: Message) -> str:
    if message.role == "user":
        return f"---\n\n## You\n\n{message.content}"
    heading = f"## Assistant ({message.model})" if message.model else "## Assistant"
    parts = ["---", heading]
    if message.reasoning:
        parts.append(f"<details><summary>Reasoning</summary>\n\n{message.reasoning}\n\n</details>")
    if message.content:
        parts.append(message.content)
    note = _STATUS_NOTES.get(message.status)
    if note:
        parts.append(note)
    return "\n\n".join(parts)


def _blockquote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _readable_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def chat_document(chat: Chat) -> dict[str, object]:
    """The ``ponder.chat`` export document as plain JSON-ready data."""
    summary = chat.summary
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "chat": {
            "id": summary.id,
            "title": summary.title,
            "model": summary.model,
            "system_prompt": chat.system_prompt,
            "settings": chat.settings,
            "created_at": summary.created_at,
            "updated_at": summary.updated_at,
        },
        "messages": [_message_document(message) for message in chat.messages],
    }


def _message_document(message: Message) -> dict[str, object]:
    return {
        "role": message.role,
        "content": message.content,
        "reasoning": message.reasoning,
        "model": message.model,
        "status": message.status,
        "finish_reason": message.finish_reason,
        "params": message.params,
        "timings": message.timings,
        "usage": {
            "prompt_tokens": message.prompt_tokens,
            "reasoning_tokens": message.reasoning_tokens,
            "answer_tokens": message.answer_tokens,
        },
        "created_at": message.created_at,
    }
