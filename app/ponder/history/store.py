"""The chat store: the :class:`History` class and how its rows become records.

A voted reply's candidates are written and read by the methods of
:class:`~ponder.history.candidates.CandidateStore`, which History mixes in.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from ponder.errors import ChatNotFoundError
from ponder.history.candidates import CandidateStore, chat_candidates, recover_candidates
from ponder.history.columns import dump, load, optional_int, rowid
from ponder.history.export import chat_document, render_markdown
from ponder.history.failures import explain
from ponder.history.liveness import own_start, writer_alive
from ponder.history.records import (
    Candidate,
    Chat,
    ChatSummary,
    Message,
    MessageStatus,
    SearchHit,
    SearchOrder,
)
from ponder.history.schema import HistoryError, connect, create_private_file, prepare, transaction
from ponder.history.search import SEARCH_ORDER, SEARCH_SQL, fts_query

UNTITLED = "Untitled"

_CHAT_NOT_FOUND_HINT = "`ponder chats list` shows the ids"


class History(CandidateStore):
    """The chat store. One connection, guarded by a lock, usable from any thread."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._last_time = datetime.min.replace(tzinfo=UTC)
        self.path = path

    # -- lifecycle ---------------------------------------------------------------

    @classmethod
    def open(cls, db_path: Path) -> History:
        """Open (creating if needed) and migrate the store; recover dead replies."""
        path = Path(db_path)
        create_private_file(path)
        conn = connect(path)
        try:
            prepare(conn, path)
            history = cls(conn, path)
            history.recover_interrupted()
        except sqlite3.DatabaseError as exc:  # a read; statements explain their own
            conn.close()
            raise explain(exc, path) from exc
        except BaseException:
            conn.close()
            raise
        return history

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def recover_interrupted(self) -> int:
        """Mark streaming replies and candidates whose writer process is gone as
        interrupted.

        Returns how many rows were marked. Safe while other processes stream:
        a reply whose writer is alive is left alone.
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, writer_pid, writer_start FROM messages WHERE status = 'streaming'"
            ).fetchall()
            dead = [(row["id"],) for row in rows if not writer_alive(row[1], row[2])]
            if dead:
                with transaction(self._conn):
                    self._conn.executemany(
                        "UPDATE messages SET status = 'interrupted',"
                        " finish_reason = COALESCE(finish_reason, 'interrupted'),"
                        " writer_pid = NULL, writer_start = NULL"
                        " WHERE id = ? AND status = 'streaming'",
                        dead,
                    )
            return len(dead) + recover_candidates(self._conn)

    # -- writing -----------------------------------------------------------------

    def create_chat(
        self,
        *,
        title: str,
        model: str | None,
        system_prompt: str | None = None,
        settings: dict[str, object] | None = None,
    ) -> int:
        with self._lock:
            now = self._now()
            cursor = self._conn.execute(
                "INSERT INTO chats (title, model, system_prompt, settings, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (_clean_title(title), model, system_prompt, dump(settings or {}), now, now),
            )
            return rowid(cursor)

    def update_chat_settings(
        self, chat_id: int, *, system_prompt: str | None, settings: dict[str, object]
    ) -> None:
        """Replace a chat's system prompt and settings (``updated_at`` stays)."""
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE chats SET system_prompt = ?, settings = ? WHERE id = ?",
                (system_prompt or None, dump(settings), chat_id),
            )
        if cursor.rowcount == 0:
            raise _chat_not_found(chat_id)

    def take_last_exchange(self, chat_id: int) -> str:
        """Remove the chat's last prompt and the reply to it; return the prompt.

        This is "regenerate": the prompt is asked again and its new reply replaces
        the old one. A reply still streaming is refused.
        """
        with self._lock, transaction(self._conn):
            rows = self._conn.execute(
                "SELECT id, role, content, status FROM messages WHERE chat_id = ?"
                " ORDER BY id DESC LIMIT 2",
                (chat_id,),
            ).fetchall()
            if any(row["status"] == "streaming" for row in rows):
                raise HistoryError("the last reply is still streaming; stop it first")
            users = [row for row in rows if row["role"] == "user"]
            if not users:
                raise HistoryError(f"chat {chat_id} has no prompt to ask again")
            prompt_row = users[0]
            self._conn.execute(
                "DELETE FROM messages WHERE chat_id = ? AND id >= ?", (chat_id, prompt_row["id"])
            )
            return str(prompt_row["content"])

    def add_user_message(self, chat_id: int, content: str) -> int:
        with self._lock, transaction(self._conn):
            now = self._touch_chat(chat_id)
            cursor = self._conn.execute(
                "INSERT INTO messages (chat_id, role, content, status, created_at)"
                " VALUES (?, 'user', ?, 'complete', ?)",
                (chat_id, content, now),
            )
            return rowid(cursor)

    def start_reply(self, chat_id: int, *, model: str, params: dict[str, object]) -> int:
        """Insert an empty assistant row in status ``streaming``, owned by this process."""
        with self._lock, transaction(self._conn):
            now = self._touch_chat(chat_id)
            cursor = self._conn.execute(
                "INSERT INTO messages (chat_id, role, model, status, params,"
                " writer_pid, writer_start, created_at)"
                " VALUES (?, 'assistant', ?, 'streaming', ?, ?, ?, ?)",
                (chat_id, model, dump(params), os.getpid(), own_start(), now),
            )
            return rowid(cursor)

    def append_reply(self, message_id: int, *, reasoning: str = "", answer: str = "") -> None:
        """Append streamed text to a streaming reply and commit it."""
        if not reasoning and not answer:
            return
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE messages SET reasoning = reasoning || ?, content = content || ?"
                " WHERE id = ? AND status = 'streaming'",
                (reasoning, answer, message_id),
            )
        if cursor.rowcount == 0:
            raise HistoryError(f"reply {message_id} is not streaming; cannot append to it")

    def finish_reply(
        self,
        message_id: int,
        *,
        status: MessageStatus,
        finish_reason: str | None,
        prompt_tokens: int,
        reasoning_tokens: int,
        answer_tokens: int,
        timings: dict[str, object],
    ) -> None:
        """Record how a reply ended, with its token counts and timings."""
        if status == "streaming":
            raise ValueError("finish_reply needs a final status, not 'streaming'")
        with self._lock, transaction(self._conn):
            chat_id = self._chat_of_message(message_id)
            self._conn.execute(
                "UPDATE messages SET status = ?, finish_reason = ?, prompt_tokens = ?,"
                " reasoning_tokens = ?, answer_tokens = ?, timings = ?,"
                " writer_pid = NULL, writer_start = NULL WHERE id = ?",
                (
                    status,
                    finish_reason,
                    prompt_tokens,
                    reasoning_tokens,
                    answer_tokens,
                    dump(timings),
                    message_id,
                ),
            )
            self._touch_chat(chat_id)

    def rename_chat(self, chat_id: int, title: str) -> None:
        """Change a chat's title. ``updated_at`` tracks conversation, so it stays."""
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE chats SET title = ? WHERE id = ?", (_clean_title(title), chat_id)
            )
        if cursor.rowcount == 0:
            raise _chat_not_found(chat_id)

    def delete_chat(self, chat_id: int) -> None:
        """Delete a chat and all its messages."""
        with self._lock:
            cursor = self._conn.execute("DELETE FROM chats WHERE id = ?", (chat_id,))
        if cursor.rowcount == 0:
            raise _chat_not_found(chat_id)

    # -- reading -----------------------------------------------------------------

    def last_chat_id(self) -> int | None:
        """The most recently updated chat, or None when there are none."""
        with self._lock:
            row = self._conn.execute(
                "SELECT id FROM chats ORDER BY updated_at DESC, id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else int(row["id"])

    def list_chats(self, limit: int = 50, offset: int = 0) -> list[ChatSummary]:
        """Chats, most recently updated first."""
        with self._lock:
            rows = self._conn.execute(
                _SUMMARY_SQL + " ORDER BY c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [_summary(row) for row in rows]

    def get_chat(self, chat_id: int) -> Chat:
        with self._lock:
            head = self._conn.execute(_SUMMARY_SQL + " WHERE c.id = ?", (chat_id,)).fetchone()
            if head is None:
                raise _chat_not_found(chat_id)
            rows = self._conn.execute(
                "SELECT * FROM messages WHERE chat_id = ? ORDER BY id", (chat_id,)
            ).fetchall()
            candidates = chat_candidates(self._conn, chat_id)
        return Chat(
            summary=_summary(head),
            system_prompt=head["system_prompt"],
            messages=[_message(row, candidates.get(int(row["id"]), ())) for row in rows],
            settings=load(head["settings"]),
        )

    def search(
        self,
        query: str,
        *,
        include_reasoning: bool = False,
        limit: int = 50,
        order: SearchOrder = "newest",
        marks: tuple[str, str] = ("**", "**"),
    ) -> list[SearchHit]:
        """Find messages containing every word of ``query`` (the last as a prefix).

        Any text is a valid query; one with no words finds nothing. Answers and
        prompts are searched, and reasoning too when ``include_reasoning``.
        """
        match = fts_query(query, include_reasoning=include_reasoning)
        if match is None or limit <= 0:
            return []
        sql = f"{SEARCH_SQL} ORDER BY {SEARCH_ORDER[order]} LIMIT ?"
        column = -1 if include_reasoning else 0
        with self._lock:
            rows = self._conn.execute(sql, (column, *marks, match, limit)).fetchall()
        return [_hit(row) for row in rows]

    # -- export ------------------------------------------------------------------

    def export_markdown(self, chat_id: int, *, candidates_note: str | None = None) -> str:
        """The chat as readable Markdown, reasoning folded before each answer. A voted
        reply is followed by its votes and candidates; with ``candidates_note``, by one
        line ``votes: … (NOTE)`` instead (see :func:`~.export.render_markdown`)."""
        return render_markdown(self.get_chat(chat_id), candidates_note=candidates_note)

    def export_json(self, chat_id: int) -> str:
        """The chat as a ``ponder.chat`` JSON document (see the package docstring)."""
        return json.dumps(chat_document(self.get_chat(chat_id)), ensure_ascii=False, indent=2)

    # -- helpers (call with the lock held) ---------------------------------------

    def _now(self) -> str:
        """The current UTC time, strictly increasing within this store."""
        now = datetime.now(UTC)
        if now <= self._last_time:
            now = self._last_time + timedelta(microseconds=1)
        self._last_time = now
        return now.isoformat(timespec="microseconds")

    def _touch_chat(self, chat_id: int) -> str:
        now = self._now()
        cursor = self._conn.execute("UPDATE chats SET updated_at = ? WHERE id = ?", (now, chat_id))
        if cursor.rowcount == 0:
            raise _chat_not_found(chat_id)
        return now

    def _chat_of_message(self, message_id: int) -> int:
        row = self._conn.execute(
            "SELECT chat_id FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            raise HistoryError(f"no message with id {message_id}")
        return int(row["chat_id"])


_SUMMARY_SQL = (
    "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.chat_id = c.id) AS message_count"
    " FROM chats c"
)


def _clean_title(title: str) -> str:
    return title.strip() or UNTITLED


def _chat_not_found(chat_id: int) -> ChatNotFoundError:
    return ChatNotFoundError(f"no chat with id {chat_id}", hint=_CHAT_NOT_FOUND_HINT)


def _summary(row: sqlite3.Row) -> ChatSummary:
    return ChatSummary(
        id=int(row["id"]),
        title=str(row["title"]),
        model=row["model"],
        created_at=str(row["created_at"]),
        updated_at=str(row["updated_at"]),
        message_count=int(row["message_count"]),
    )


def _message(row: sqlite3.Row, candidates: tuple[Candidate, ...]) -> Message:
    return Message(
        id=int(row["id"]),
        chat_id=int(row["chat_id"]),
        role="user" if row["role"] == "user" else "assistant",
        content=str(row["content"]),
        reasoning=str(row["reasoning"]),
        model=row["model"],
        status=str(row["status"]),
        finish_reason=row["finish_reason"],
        params=load(row["params"]),
        timings=load(row["timings"]),
        prompt_tokens=optional_int(row["prompt_tokens"]),
        reasoning_tokens=optional_int(row["reasoning_tokens"]),
        answer_tokens=optional_int(row["answer_tokens"]),
        created_at=str(row["created_at"]),
        candidates=candidates,
    )


def _hit(row: sqlite3.Row) -> SearchHit:
    return SearchHit(
        chat_id=int(row["chat_id"]),
        message_id=int(row["id"]),
        chat_title=str(row["title"]),
        role=str(row["role"]),
        snippet=str(row["snippet"]),
        created_at=str(row["created_at"]),
    )
