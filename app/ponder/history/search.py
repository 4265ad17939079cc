"""Search: user text made into a safe FTS5 query, and the SQL that runs it."""

from __future__ import annotations

from ponder.history.records import SearchOrder

_SNIPPET_TOKENS = 16

SEARCH_SQL = (
    "SELECT m.chat_id, m.id, c.title, m.role, m.created_at,"
    f" snippet(messages_fts, ?, ?, ?, '…', {_SNIPPET_TOKENS}) AS snippet"
    " FROM messages_fts"
    " JOIN messages m ON m.id = messages_fts.rowid"
    " JOIN chats c ON c.id = m.chat_id"
    " WHERE messages_fts MATCH ?"
)
SEARCH_ORDER: dict[SearchOrder, str] = {
    "newest": "m.created_at DESC, m.id DESC",
    "rank": "messages_fts.rank, m.id DESC",
}


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
