"""Export a saved chat to a file: Markdown to read, or JSON with the reasoning."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from textual.app import App

from ponder.errors import PonderError
from ponder.session import History
from ponder.tui.failures import notify_error

ExportKind = Literal["md", "json"]


def export_chat(
    app: App[Any], history: History, chat_id: int | None, kind: ExportKind, folder: Path
) -> Path | None:
    """Write the chat into ``folder`` and say where; None (and why) when it cannot."""
    if chat_id is None:
        app.notify("Nothing to export yet: this chat has no messages.", severity="warning")
        return None
    try:
        path = write_export(history, chat_id, kind, folder)
    except PonderError as exc:
        notify_error(app, exc)
        return None
    app.notify(f"Exported to {path}", title="Export")
    return path


def write_export(history: History, chat_id: int, kind: ExportKind, folder: Path) -> Path:
    """Write the chat as ``ponder-chat-ID.KIND``; an earlier export is never overwritten
    (the next is ``ponder-chat-ID-2.KIND``, and so on)."""
    text = history.export_markdown(chat_id) if kind == "md" else history.export_json(chat_id)
    path = folder / f"ponder-chat-{chat_id}.{kind}"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"ponder-chat-{chat_id}-{n}.{kind}"
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PonderError(f"cannot write {path}: {exc.strerror}") from exc
    return path
