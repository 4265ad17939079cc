"""Opening the file: private creation, connection settings, and the schema migrations."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from ponder.history.failures import (
    Connection,
    HistoryError,
    HistoryFullError,
    HistoryVersionError,
    explain,
    explain_os_error,
)

__all__ = ["HistoryError", "HistoryFullError", "HistoryVersionError", "connect", "prepare"]

_BUSY_TIMEOUT_S = 10.0

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
    # 3: the candidates of a voted reply (`ponder run --votes N`), deleted with it. The
    # UNIQUE constraint's index is the (message_id, idx) index; no FTS5: the winner's text
    # is searchable as the reply itself.
    (
        """CREATE TABLE candidates (
            id               INTEGER PRIMARY KEY,
            message_id       INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
            idx              INTEGER NOT NULL CHECK (idx >= 0),
            content          TEXT NOT NULL DEFAULT '',
            reasoning        TEXT NOT NULL DEFAULT '',
            extracted        TEXT,
            status           TEXT NOT NULL CHECK (status IN
                                 ('complete', 'streaming', 'interrupted', 'length', 'error')),
            finish_reason    TEXT,
            reasoning_tokens INTEGER,
            answer_tokens    INTEGER,
            timings          TEXT NOT NULL DEFAULT '{}',
            writer_pid       INTEGER,
            writer_start     TEXT,
            created_at       TEXT NOT NULL,
            UNIQUE (message_id, idx)
        )""",
        "CREATE INDEX candidates_streaming ON candidates (status) WHERE status = 'streaming'",
    ),
)

SCHEMA_VERSION = len(_MIGRATIONS)


def create_private_file(path: Path) -> None:
    """Create the folder (0700) and the empty database file (0600) if missing."""
    try:
        _create_private_file(path)
    except OSError as exc:
        raise explain_os_error(exc, path) from exc


def _create_private_file(path: Path) -> None:
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


def connect(path: Path) -> sqlite3.Connection:
    """One connection in autocommit mode (transactions are explicit), usable from any
    thread, whose failures are :class:`HistoryError` lines (see :mod:`.failures`)."""
    try:
        conn = sqlite3.connect(
            path,
            timeout=_BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
            factory=Connection,
        )
    except sqlite3.Error as exc:
        raise explain(exc, path) from exc
    conn.row_factory = sqlite3.Row
    return conn


def prepare(conn: sqlite3.Connection, path: Path) -> None:
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
        with transaction(conn):
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
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
