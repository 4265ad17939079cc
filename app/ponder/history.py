"""Chat history: one SQLite file that survives crashes and keeps reasoning apart.

Why SQLite from the stdlib: a single private file, real transactions, WAL so the
TUI and a headless run can share the store at once, and FTS5 for search, with no
server and no dependency. What this module decides:

* **Crash safety.** Replies are written while they stream: :meth:`History.append_reply`
  commits each piece, so a killed process loses at most the last moment. A streaming
  row records its writer's PID (and, where ``/proc`` exists, the writer's start time,
  so a reused PID is not mistaken for the writer). :meth:`History.open` marks rows
  whose writer is gone as ``interrupted``; a row whose writer is still alive (another
  Ponder process, or this one) is left alone.
* **Migrations.** ``_MIGRATIONS[n - 1]`` upgrades schema ``n - 1`` to ``n``. Each runs
  in its own ``BEGIN IMMEDIATE`` transaction that also sets ``PRAGMA user_version``,
  so two processes opening a new file at once cannot both migrate. A file written by
  a newer Ponder (``user_version`` above what this one knows) is refused untouched.
* **Search.** ``messages_fts`` is an external-content FTS5 table over the messages'
  ``content`` and ``reasoning`` columns, kept in sync by triggers. A row is indexed
  once it stops streaming, so the several appends a second of a long reply do not
  re-tokenize its whole text each time; a reply becomes searchable when it finishes
  or is recovered. User text never reaches the FTS5 query parser raw: each word is
  quoted, the words are ANDed, and the last one matches as a prefix.
* **Privacy.** The file is created ``0600`` (and its ``-wal``/``-shm`` made so), in a
  ``0700`` folder when this module creates the folder.
* **No silent loss.** Messages go only when their chat is deleted on request
  (``ON DELETE CASCADE``).

Export format (:meth:`History.export_json`), stable within a ``version``::

    {"format": "ponder.chat", "version": 1,
     "chat": {"id", "title", "model", "system_prompt", "settings", "created_at",
              "updated_at"},
     "messages": [{"role", "content", "reasoning", "model", "status", "finish_reason",
                   "params", "timings",
                   "usage": {"prompt_tokens", "reasoning_tokens", "answer_tokens"},
                   "created_at"}]}

Times are ISO-8601 in UTC. ``content`` is the answer (or the user's prompt);
``reasoning`` is the model's thinking, empty for user turns.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from ponder.errors import ChatNotFoundError, PonderError

MessageStatus = Literal["complete", "streaming", "interrupted", "length", "error"]
Role = Literal["user", "assistant"]
SearchOrder = Literal["newest", "rank"]

EXPORT_FORMAT = "ponder.chat"
EXPORT_VERSION = 1
UNTITLED = "Untitled"

_BUSY_TIMEOUT_S = 10.0
_SNIPPET_TOKENS = 16
_CHAT_NOT_FOUND_HINT = "`ponder chats list` shows the ids"

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: chats, messages, and the full-text index over messages.
    (
        """CREATE TABLE chats (
            id            INTEGER PRIMARY KEY,
            title         TEXT NOT NULL,
            model         TEXT,
            system_prompt TEXT,
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL
        )""",
        "CREATE INDEX chats_by_update ON chats (updated_at DESC, id DESC)",
        """CREATE TABLE messages (
            id               INTEGER PRIMARY KEY,
            chat_id          INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
            role             TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content          TEXT NOT NULL DEFAULT '',
            reasoning        TEXT NOT NULL DEFAULT '',
            model            TEXT,
            status           TEXT NOT NULL CHECK (status IN
                                 ('complete', 'streaming', 'interrupted', 'length', 'error')),
            finish_reason    TEXT,
            params           TEXT NOT NULL DEFAULT '{}',
            timings          TEXT NOT NULL DEFAULT '{}',
            prompt_tokens    INTEGER,
            reasoning_tokens INTEGER,
            answer_tokens    INTEGER,
            writer_pid       INTEGER,
            writer_start     TEXT,
            created_at       TEXT NOT NULL
        )""",
        "CREATE INDEX messages_by_chat ON messages (chat_id, id)",
        "CREATE INDEX messages_streaming ON messages (status) WHERE status = 'streaming'",
        """CREATE VIRTUAL TABLE messages_fts USING fts5 (
            content, reasoning,
            content = 'messages', content_rowid = 'id',
            tokenize = 'unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
        WHEN new.status <> 'streaming' BEGIN
            INSERT INTO messages_fts (rowid, content, reasoning)
            VALUES (new.id, new.content, new.reasoning);
        END""",
        """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
        WHEN old.status <> 'streaming' BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content, reasoning)
            VALUES ('delete', old.id, old.content, old.reasoning);
        END""",
        """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, reasoning, status
        ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content, reasoning)
            SELECT 'delete', old.id, old.content, old.reasoning
            WHERE old.status <> 'streaming';
            INSERT INTO messages_fts (rowid, content, reasoning)
            SELECT new.id, new.content, new.reasoning
            WHERE new.status <> 'streaming';
        END""",
    ),
    # 2: per-chat settings (sampling, context size, whether earlier thinking is kept).
    ("ALTER TABLE chats ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'",),
)

SCHEMA_VERSION = len(_MIGRATIONS)


class HistoryError(PonderError):
    """The chat history file cannot be used (corrupt, locked, or misused)."""


class HistoryVersionError(HistoryError):
    """The file was written by a newer Ponder; it is left untouched."""


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


class History:
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
        _create_private_file(path)
        conn = _connect(path)
        try:
            _prepare(conn, path)
            history = cls(conn, path)
            history.recover_interrupted()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise HistoryError(
                f"cannot use the chat history {path}: {exc}",
                hint="move the file aside to start a fresh history",
            ) from exc
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
        """Mark streaming replies whose writer process is gone as interrupted.

        Returns how many rows were marked. Safe while other processes stream:
        a reply whose writer is alive is left alone.
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, writer_pid, writer_start FROM messages WHERE status = 'streaming'"
            ).fetchall()
            dead = [(row["id"],) for row in rows if not _writer_alive(row[1], row[2])]
            if dead:
                with _transaction(self._conn):
                    self._conn.executemany(
                        "UPDATE messages SET status = 'interrupted',"
                        " finish_reason = COALESCE(finish_reason, 'interrupted'),"
                        " writer_pid = NULL, writer_start = NULL"
                        " WHERE id = ? AND status = 'streaming'",
                        dead,
                    )
            return len(dead)

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
                (_clean_title(title), model, system_prompt, _dump(settings or {}), now, now),
            )
            return _rowid(cursor)

    def update_chat_settings(
        self, chat_id: int, *, system_prompt: str | None, settings: dict[str, object]
    ) -> None:
        """Replace a chat's system prompt and settings (``updated_at`` stays)."""
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE chats SET system_prompt = ?, settings = ? WHERE id = ?",
                (system_prompt or None, _dump(settings), chat_id),
            )
        if cursor.rowcount == 0:
            raise _chat_not_found(chat_id)

    def take_last_exchange(self, chat_id: int) -> str:
        """Remove the chat's last prompt and the reply to it; return the prompt.

        This is "regenerate": the prompt is asked again and its new reply replaces
        the old one. A reply still streaming is refused.
        """
        with self._lock, _transaction(self._conn):
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
        with self._lock, _transaction(self._conn):
            now = self._touch_chat(chat_id)
            cursor = self._conn.execute(
                "INSERT INTO messages (chat_id, role, content, status, created_at)"
                " VALUES (?, 'user', ?, 'complete', ?)",
                (chat_id, content, now),
            )
            return _rowid(cursor)

    def start_reply(self, chat_id: int, *, model: str, params: dict[str, object]) -> int:
        """Insert an empty assistant row in status ``streaming``, owned by this process."""
        with self._lock, _transaction(self._conn):
            now = self._touch_chat(chat_id)
            cursor = self._conn.execute(
                "INSERT INTO messages (chat_id, role, model, status, params,"
                " writer_pid, writer_start, created_at)"
                " VALUES (?, 'assistant', ?, 'streaming', ?, ?, ?, ?)",
                (chat_id, model, _dump(params), os.getpid(), _own_start(), now),
            )
            return _rowid(cursor)

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
        with self._lock, _transaction(self._conn):
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
                    _dump(timings),
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
        return Chat(
            summary=_summary(head),
            system_prompt=head["system_prompt"],
            messages=[_message(row) for row in rows],
            settings=_load(head["settings"]),
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
        sql = f"{_SEARCH_SQL} ORDER BY {_SEARCH_ORDER[order]} LIMIT ?"
        column = -1 if include_reasoning else 0
        with self._lock:
            rows = self._conn.execute(sql, (column, *marks, match, limit)).fetchall()
        return [_hit(row) for row in rows]

    # -- export ------------------------------------------------------------------

    def export_markdown(self, chat_id: int) -> str:
        """The chat as readable Markdown, reasoning folded before each answer."""
        return render_markdown(self.get_chat(chat_id))

    def export_json(self, chat_id: int) -> str:
        """The chat as a ``ponder.chat`` JSON document (see the module docstring)."""
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

_SEARCH_SQL = (
    "SELECT m.chat_id, m.id, c.title, m.role, m.created_at,"
    f" snippet(messages_fts, ?, ?, ?, '…', {_SNIPPET_TOKENS}) AS snippet"
    " FROM messages_fts"
    " JOIN messages m ON m.id = messages_fts.rowid"
    " JOIN chats c ON c.id = m.chat_id"
    " WHERE messages_fts MATCH ?"
)
_SEARCH_ORDER: dict[SearchOrder, str] = {
    "newest": "m.created_at DESC, m.id DESC",
    "rank": "messages_fts.rank, m.id DESC",
}


# -- search query --------------------------------------------------------------


def fts_query(text: str, *, include_reasoning: bool = False) -> str | None:
    """Turn arbitrary user text into a safe FTS5 query, or None if it has no words.

    Each whitespace-separated word becomes a quoted phrase (``"`` doubled), so
    operators such as ``AND``, ``NEAR(``, ``*`` or ``-`` are plain text. Phrases
    are ANDed and the last one matches as a prefix, for search-as-you-type.
    Words with no letter or digit are dropped: the tokenizer would ignore them.
    """
    text = text.replace("\x00", " ")  # FTS5 reads a NUL as the end of the query
    words = [word for word in text.split() if any(ch.isalnum() for ch in word)]
    if not words:
        return None
    column = "" if include_reasoning else "content : "  # the plain per-phrase filter
    phrases = [column + '"' + word.replace('"', '""') + '"' for word in words]
    return " ".join(phrases) + "*"


# -- export rendering ------------------------------------------------------------

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


# -- opening and migrating -------------------------------------------------------


def _create_private_file(path: Path) -> None:
    """Create the folder (0700) and the empty database file (0600) if missing."""
    parent = path.parent
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True, mode=0o700)
        except FileExistsError:
            pass
        else:
            os.chmod(parent, 0o700)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, 0o600)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    return conn


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a newer schema before touching anything; then configure and migrate."""
    _refuse_newer(conn, path)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL").fetchall()
    conn.execute("PRAGMA synchronous = NORMAL")
    _migrate(conn, path)
    _privatize_sidecars(path)


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _refuse_newer(conn: sqlite3.Connection, path: Path) -> None:
    version = _user_version(conn)
    if version > SCHEMA_VERSION:
        raise HistoryVersionError(
            f"the chat history {path} has schema version {version}, but this Ponder"
            f" knows only up to {SCHEMA_VERSION}; it was left untouched",
            hint="upgrade Ponder to open it",
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    for version, statements in enumerate(_MIGRATIONS, start=1):
        if _user_version(conn) >= version:
            continue
        with _transaction(conn):
            _refuse_newer(conn, path)  # another process may have moved on meanwhile
            if _user_version(conn) < version:
                _run_migration(conn, version, statements)


def _run_migration(conn: sqlite3.Connection, version: int, statements: Sequence[str]) -> None:
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {int(version)}")


def _privatize_sidecars(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        with suppress(OSError):  # absent, or someone else's: nothing we may change
            os.chmod(path.with_name(path.name + suffix), 0o600)


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# -- writer liveness -------------------------------------------------------------


def _writer_alive(pid: int | None, start: str | None) -> bool:
    """Whether the process that wrote a streaming row may still be writing it.

    Unsure answers say alive: a live reply must never be marked interrupted.
    """
    if pid is None or pid <= 0 or not _pid_exists(pid):
        return False
    if start is None:
        return True
    current = _process_start(pid)
    return current is None or current == start  # a different start: the PID was reused


def _pid_exists(pid: int) -> bool:
    if sys.platform == "win32":
        return _pid_exists_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # PermissionError: alive but another user's
    return True


if sys.platform == "win32":

    def _pid_exists_windows(pid: int) -> bool:
        """os.kill(pid, 0) would terminate the process on Windows; ask the kernel."""
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() != 87  # ERROR_INVALID_PARAMETER: no process
        try:
            code = wintypes.DWORD()
            ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return not ok or code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)


def _process_start(pid: int) -> str | None:
    """The process start time in clock ticks from ``/proc`` (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of proc(5)


def _own_start() -> str | None:
    return _process_start(os.getpid())


# -- row conversion --------------------------------------------------------------


def _rowid(cursor: sqlite3.Cursor) -> int:
    rowid = cursor.lastrowid
    if rowid is None:  # pragma: no cover - sqlite always sets it after an INSERT
        raise HistoryError("the database did not return the new row's id")
    return rowid


def _clean_title(title: str) -> str:
    return title.strip() or UNTITLED


def _chat_not_found(chat_id: int) -> ChatNotFoundError:
    return ChatNotFoundError(f"no chat with id {chat_id}", hint=_CHAT_NOT_FOUND_HINT)


def _dump(data: dict[str, object]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)


def _load(text: str | None) -> dict[str, object]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _optional_int(value: int | None) -> int | None:
    return None if value is None else int(value)


def _summary(row: sqlite3.Row) -> ChatSummary:
    return ChatSummary(
        id=int(row["id"]),
        title=str(row["title"]),
        model=row["model"],
        created_at=str(row["created_at"]),
        updated_at=str(row["updated_at"]),
        message_count=int(row["message_count"]),
    )


def _message(row: sqlite3.Row) -> Message:
    return Message(
        id=int(row["id"]),
        chat_id=int(row["chat_id"]),
        role="user" if row["role"] == "user" else "assistant",
        content=str(row["content"]),
        reasoning=str(row["reasoning"]),
        model=row["model"],
        status=str(row["status"]),
        finish_reason=row["finish_reason"],
        params=_load(row["params"]),
        timings=_load(row["timings"]),
        prompt_tokens=_optional_int(row["prompt_tokens"]),
        reasoning_tokens=_optional_int(row["reasoning_tokens"]),
        answer_tokens=_optional_int(row["answer_tokens"]),
        created_at=str(row["created_at"]),
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
