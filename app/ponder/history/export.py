"""A chat as Markdown, or as a ``ponder.chat`` document (its format: the package docstring).

A voted reply (``ponder run --votes N``) is the winner's text, followed in Markdown by its
count (``Votes: 4 of 5 agree: 391``) and every candidate: number, extracted answer, finish
reason, reasoning folded as the reply's is, answer. In JSON it gains ``"candidates"``; its
``params`` carry ``"votes"`` already.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ponder.history.records import Candidate, Chat, Message

EXPORT_FORMAT = "ponder.chat"
EXPORT_VERSION = 1

_STATUS_NOTES = {
    "interrupted": "*[Interrupted: this reply was cut off before it finished.]*",
    "streaming": "*[Still being written when this was exported.]*",
    "length": "*[Stopped at the token limit: this reply is incomplete.]*",
    "error": "*[An error ended this reply early.]*",
}


def render_markdown(chat: Chat, *, candidates_note: str | None = None) -> str:
    """Markdown for a chat: a header, then each turn in order.

    With ``candidates_note``, a voted reply's candidates are left out and one line says
    the count and the note instead: ``votes: 4 of 5 agree: 391 (NOTE)``.
    """
    parts = [_markdown_header(chat)]
    parts.extend(_markdown_turn(message, candidates_note) for message in chat.messages)
    return "\n\n".join(parts).rstrip() + "\n"


def votes_summary(message: Message) -> str | None:
    """``4 of 5 agree: 391`` for a voted reply, from the ``votes`` in its params (their
    ``summary`` when they carry one); None for a reply that was not voted on."""
    votes = message.params.get("votes")
    if not isinstance(votes, dict):
        count = len(message.candidates)
        return f"no vote was taken ({count} candidates)" if count else None
    summary = votes.get("summary")
    if isinstance(summary, str) and summary:
        return summary
    n = votes.get("n", len(message.candidates))
    winner = votes.get("winner")
    if winner is None:
        return f"no candidate gave an answer ({n} candidates)"
    tally = votes.get("tally")
    agree = tally.get(winner, "?") if isinstance(tally, dict) else votes.get("agree", "?")
    return f"{agree} of {n} agree: {winner}"


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


def _markdown_turn(message: Message, candidates_note: str | None) -> str:
    if message.role == "user":
        return f"---\n\n## You\n\n{message.content}"
    heading = f"## Assistant ({message.model})" if message.model else "## Assistant"
    parts = ["---", heading, *_markdown_text(message.reasoning, message.content)]
    note = _STATUS_NOTES.get(message.status)
    if note:
        parts.append(note)
    summary = votes_summary(message)
    if summary is not None and candidates_note is not None:
        parts.append(f"votes: {summary} ({candidates_note})")
    elif summary is not None:
        parts.append(f"Votes: {summary}")
        votes = message.params.get("votes")
        index = votes.get("winner_index") if isinstance(votes, dict) else None
        parts.extend(_markdown_candidate(c, c.index == index) for c in message.candidates)
    return "\n\n".join(parts)


def _markdown_text(reasoning: str, content: str) -> list[str]:
    parts: list[str] = []
    if reasoning:
        parts.append(f"<details><summary>Reasoning</summary>\n\n{reasoning}\n\n</details>")
    if content:
        parts.append(content)
    return parts


def _markdown_candidate(candidate: Candidate, won: bool) -> str:
    answer = candidate.extracted if candidate.extracted is not None else "no answer"
    ended = candidate.finish_reason or candidate.status
    won_note = ", the reply" if won else ""
    heading = f"### Candidate {candidate.index + 1}: {answer} ({ended}{won_note})"
    return "\n\n".join([heading, *_markdown_text(candidate.reasoning, candidate.content)])


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
    document: dict[str, object] = {
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
    if message.candidates:
        document["candidates"] = [_candidate_document(c) for c in message.candidates]
    return document


def _candidate_document(candidate: Candidate) -> dict[str, object]:
    return {
        "index": candidate.index,
        "content": candidate.content,
        "reasoning": candidate.reasoning,
        "extracted": candidate.extracted,
        "status": candidate.status,
        "finish_reason": candidate.finish_reason,
        "usage": {
            "reasoning_tokens": candidate.reasoning_tokens,
            "answer_tokens": candidate.answer_tokens,
        },
        "timings": candidate.timings,
        "created_at": candidate.created_at,
    }
