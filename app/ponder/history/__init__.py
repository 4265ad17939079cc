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
  (``ON DELETE CASCADE``), and a voted reply's candidates only with their reply.
* **Votes.** A reply voted on (``ponder run --votes N``) keeps every candidate in
  ``candidates`` (schema 3), streamed and recovered as replies are; the winner's text is
  the reply. Candidates are not in the full-text index: the winner is, as the reply.

Export format (:meth:`History.export_json`), stable within a ``version``::

    {"format": "ponder.chat", "version": 1,
     "chat": {"id", "title", "model", "system_prompt", "settings", "created_at",
              "updated_at"},
     "messages": [{"role", "content", "reasoning", "model", "status", "finish_reason",
                   "params", "timings",
                   "usage": {"prompt_tokens", "reasoning_tokens", "answer_tokens"},
                   "created_at",
                   "candidates": [{"index", "content", "reasoning", "extracted", "status",
                                   "finish_reason",
                                   "usage": {"reasoning_tokens", "answer_tokens"},
                                   "timings", "created_at"}]}]}

Times are ISO-8601 in UTC. ``content`` is the answer (or the user's prompt);
``reasoning`` is the model's thinking, empty for user turns. Only a voted reply has
``candidates`` (``index`` from 0; ``extracted``: the normalised answer it voted for, or
null), and its ``params`` then hold ``"votes": {"n", "winner", "winner_index", "tally"}``.

One job per module, each importing only those above it in this list:

* :mod:`.records`: the dataclasses the store hands out;
* :mod:`.export`: a chat as Markdown or as the JSON document above;
* :mod:`.failures`: the errors, and what a failed SQLite call means (a full disk is
  not a damaged file);
* :mod:`.columns`: a row's JSON and integer columns, and a new row's id;
* :mod:`.schema`: creating the private file, connecting, migrating;
* :mod:`.liveness`: whether a streaming row's writer process is still alive;
* :mod:`.search`: user text made into a safe FTS5 query;
* :mod:`.candidates`: a voted reply's candidates, written, read and recovered;
* :mod:`.store`: the :class:`History` class itself.
"""

from __future__ import annotations

from ponder.history.export import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    chat_document,
    render_markdown,
    votes_summary,
)
from ponder.history.records import (
    Candidate,
    Chat,
    ChatSummary,
    Message,
    MessageStatus,
    Role,
    SearchHit,
    SearchOrder,
)
from ponder.history.schema import (
    SCHEMA_VERSION,
    HistoryError,
    HistoryFullError,
    HistoryVersionError,
)
from ponder.history.search import fts_query
from ponder.history.store import UNTITLED, History

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "SCHEMA_VERSION",
    "UNTITLED",
    "Candidate",
    "Chat",
    "ChatSummary",
    "History",
    "HistoryError",
    "HistoryFullError",
    "HistoryVersionError",
    "Message",
    "MessageStatus",
    "Role",
    "SearchHit",
    "SearchOrder",
    "chat_document",
    "fts_query",
    "render_markdown",
    "votes_summary",
]
