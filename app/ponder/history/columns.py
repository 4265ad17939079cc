"""A row's JSON and integer columns to and from Python values, and a new row's id."""

from __future__ import annotations

import json
import sqlite3

from ponder.history.failures import HistoryError


def dump(data: dict[str, object]) -> str:
    """A dict as the JSON text of a column (keys sorted, anything else as ``str``)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)


def load(text: str | None) -> dict[str, object]:
    """A JSON column back as a dict; ``{}`` for anything that is not a JSON object."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def optional_int(value: int | None) -> int | None:
    return None if value is None else int(value)


def rowid(cursor: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just made."""
    new = cursor.lastrowid
    if new is None:  # pragma: no cover - sqlite always sets it after an INSERT
        raise HistoryError("the database did not return the new row's id")
    return new
