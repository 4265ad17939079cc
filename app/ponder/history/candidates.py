"""A voted reply's candidates (``ponder run --votes N``), kept as they stream.

Each candidate is a row of ``candidates`` (schema 3) under its reply's message, numbered
``idx`` from 0, and deleted with the message (``ON DELETE CASCADE``; every connection
turns foreign keys on), so deleting a chat or regenerating a reply takes its candidates
too. They are written as a reply is: :meth:`CandidateStore.append_candidate` commits each
piece, so Ctrl-C or a crash keeps every candidate's partial text, and a streaming row
records its writer process, so :func:`recover_candidates` marks the candidates of a dead
writer ``interrupted`` (as the store does for replies) and leaves a live one alone.

The winner is the reply itself: the caller writes its text into the message, and
:meth:`CandidateStore.set_votes` adds the count to the message's params. The candidates
are not in the full-text index, so a search finds a voted answer once, as the reply.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from ponder.history.columns import dump, load, optional_int, rowid
from ponder.history.failures import HistoryError
from ponder.history.liveness import own_start, writer_alive
from ponder.history.records import Candidate, MessageStatus
from ponder.history.schema import transaction

__all__ = ["CandidateStore", "chat_candidates", "recover_candidates"]


class CandidateStore:
    """The candidate methods of :class:`~ponder.history.store.History`, mixed into it:
    History supplies the connection, the lock that guards it, and the clock."""

    _conn: sqlite3.Connection
    _lock: threading.Lock

    def _now(self) -> str:  # pragma: no cover - History's own
        raise NotImplementedError

    def start_candidate(self, message_id: int, index: int) -> int:
        """Insert candidate ``index`` (0-based) of the reply ``message_id``: empty, in
        status ``streaming``, owned by this process. Returns the candidate's id."""
        if index < 0:
            raise ValueError(f"a candidate's index is 0 or more, not {index}")
        with self._lock, transaction(self._conn):
            reply = self._conn.execute(
                "SELECT 1 FROM messages WHERE id = ? AND role = 'assistant'", (message_id,)
            ).fetchone()
            if reply is None:
                raise HistoryError(f"no reply with id {message_id}")
            taken = self._conn.execute(
                "SELECT 1 FROM candidates WHERE message_id = ? AND idx = ?", (message_id, index)
            ).fetchone()
            if taken is not None:
                raise HistoryError(f"reply {message_id} already has a candidate {index}")
            cursor = self._conn.execute(
                "INSERT INTO candidates (message_id, idx, status, writer_pid, writer_start,"
                " created_at) VALUES (?, ?, 'streaming', ?, ?, ?)",
                (message_id, index, os.getpid(), own_start(), self._now()),
            )
            return rowid(cursor)

    def append_candidate(self, candidate_id: int, *, reasoning: str = "", answer: str = "") -> None:
        """Append streamed text to a streaming candidate and commit it."""
        if not reasoning and not answer:
            return
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE candidates SET reasoning = reasoning || ?, content = content || ?"
                " WHERE id = ? AND status = 'streaming'",
                (reasoning, answer, candidate_id),
            )
        if cursor.rowcount == 0:
            raise HistoryError(f"candidate {candidate_id} is not streaming; cannot append to it")

    def finish_candidate(
        self,
        candidate_id: int,
        *,
        status: MessageStatus,
        finish_reason: str | None,
        reasoning_tokens: int,
        answer_tokens: int,
        extracted: str | None,
        timings: dict[str, object],
    ) -> None:
        """Record how a candidate ended, the answer it votes for, its counts and timings."""
        if status == "streaming":
            raise ValueError("finish_candidate needs a final status, not 'streaming'")
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE candidates SET status = ?, finish_reason = ?, reasoning_tokens = ?,"
                " answer_tokens = ?, extracted = ?, timings = ?,"
                " writer_pid = NULL, writer_start = NULL WHERE id = ?",
                (
                    status,
                    finish_reason,
                    reasoning_tokens,
                    answer_tokens,
                    extracted,
                    dump(timings),
                    candidate_id,
                ),
            )
        if cursor.rowcount == 0:
            raise HistoryError(f"no candidate with id {candidate_id}")

    def set_votes(self, message_id: int, votes: dict[str, object]) -> None:
        """Put ``votes`` (``n``, ``winner``, ``winner_index``, ``tally``) under the key
        ``"votes"`` of the message's params; the other params stay as they are."""
        with self._lock, transaction(self._conn):
            row = self._conn.execute(
                "SELECT params FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                raise HistoryError(f"no message with id {message_id}")
            params = {**load(row["params"]), "votes": votes}
            self._conn.execute(
                "UPDATE messages SET params = ? WHERE id = ?", (dump(params), message_id)
            )

    def candidates(self, message_id: int) -> list[Candidate]:
        """The reply's candidates by index; empty for a reply that was not voted on."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM candidates WHERE message_id = ? ORDER BY idx", (message_id,)
            ).fetchall()
        return [_candidate(row) for row in rows]


def chat_candidates(conn: sqlite3.Connection, chat_id: int) -> dict[int, tuple[Candidate, ...]]:
    """The candidates of every message of a chat, by message id, in one query."""
    rows = conn.execute(
        "SELECT c.* FROM candidates c JOIN messages m ON m.id = c.message_id"
        " WHERE m.chat_id = ? ORDER BY c.message_id, c.idx",
        (chat_id,),
    ).fetchall()
    grouped: dict[int, list[Candidate]] = {}
    for row in rows:
        grouped.setdefault(int(row["message_id"]), []).append(_candidate(row))
    return {message_id: tuple(found) for message_id, found in grouped.items()}


def recover_candidates(conn: sqlite3.Connection) -> int:
    """Mark streaming candidates whose writer process is gone as interrupted; returns
    how many. A candidate whose writer is alive is left alone."""
    rows = conn.execute(
        "SELECT id, writer_pid, writer_start FROM candidates WHERE status = 'streaming'"
    ).fetchall()
    dead = [(row["id"],) for row in rows if not writer_alive(row[1], row[2])]
    if dead:
        with transaction(conn):
            conn.executemany(
                "UPDATE candidates SET status = 'interrupted',"
                " finish_reason = COALESCE(finish_reason, 'interrupted'),"
                " writer_pid = NULL, writer_start = NULL"
                " WHERE id = ? AND status = 'streaming'",
                dead,
            )
    return len(dead)


def _candidate(row: sqlite3.Row) -> Candidate:
    return Candidate(
        index=int(row["idx"]),
        content=str(row["content"]),
        reasoning=str(row["reasoning"]),
        extracted=row["extracted"],
        status=str(row["status"]),
        finish_reason=row["finish_reason"],
        reasoning_tokens=optional_int(row["reasoning_tokens"]),
        answer_tokens=optional_int(row["answer_tokens"]),
        timings=load(row["timings"]),
        created_at=str(row["created_at"]),
    )
