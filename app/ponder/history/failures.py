"""What a failed SQLite call means for the user: a full disk is not a damaged file.

SQLite says "database or disk is full" (``SQLITE_FULL``) when a write finds no room, but
"disk I/O error" (``SQLITE_IOERR_*``) when it cannot even extend the WAL or its shared
memory file, which is what opening a healthy history on an already full disk gives; and a
write past ``ulimit -f`` is an I/O error too (:func:`at_size_limit`). Telling a user with
a full disk to "move the file aside" would make them throw away a healthy history, so an
I/O error is checked against the folder: :func:`has_room` writes a few KB there
(``statvfs`` sees no quota). Only ``SQLITE_CORRUPT``/``SQLITE_NOTADB`` mean a damaged file.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import tempfile
from contextlib import suppress
from pathlib import Path

from ponder.errors import DiskFullError, PonderError, is_disk_full

PROBE_BYTES = 64 * 1024  # a few WAL frames' worth


class HistoryError(PonderError):
    """The chat history file cannot be used (corrupt, locked, or misused)."""


class HistoryVersionError(HistoryError):
    """The file was written by a newer Ponder; it is left untouched."""


class HistoryFullError(HistoryError, DiskFullError):
    """No room to write to the history; what was committed before is intact."""


FULL_HINT = "free some space and try again; the history is intact"
FULL_CAUSES = "the disk is full, or a quota or a file-size limit is reached"


def explain(exc: sqlite3.Error, path: Path) -> HistoryError:
    """The one-line error for a failed SQLite call on the history at ``path``."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    where = f"the chat history {path}"
    if name.startswith("SQLITE_FULL") or (
        name.startswith("SQLITE_IOERR") and (not has_room(path.parent) or at_size_limit(path))
    ):
        return HistoryFullError(f"no room to write to {where} ({FULL_CAUSES})", hint=FULL_HINT)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return HistoryError(
            f"cannot use {where}: it is damaged ({exc})",
            hint="move the file aside to start a fresh history",
        )
    if name.startswith("SQLITE_IOERR"):
        return HistoryError(
            f"cannot read or write {where}: disk I/O error",
            hint="check the disk; the file was left as it is",
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return HistoryError(
            f"{where} is busy: another process holds it too long", hint="try again in a moment"
        )
    if name.startswith("SQLITE_READONLY"):
        return HistoryError(
            f"{where} is read-only", hint="check the permissions of the file and its folder"
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return HistoryError(
            f"cannot open {where}", hint="check that its folder exists and can be written"
        )
    return HistoryError(f"cannot use {where}: {exc}")


def explain_os_error(exc: OSError, path: Path) -> HistoryError:
    """Creating the file or its folder failed."""
    if is_disk_full(exc):
        return HistoryFullError(f"no room to create {path} ({FULL_CAUSES})", hint=FULL_HINT)
    return HistoryError(f"cannot create the chat history {path}: {exc.strerror or exc}")


def has_room(folder: Path) -> bool:
    """Whether ``folder`` takes a few more KB: a scratch file is written and removed.
    Only a refusal for want of room (ENOSPC, EDQUOT, EFBIG) counts as no room."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".ponder-room-")
    except OSError as exc:
        return not is_disk_full(exc)
    try:
        os.write(fd, bytes(PROBE_BYTES))
    except OSError as exc:
        return not is_disk_full(exc)
    finally:
        os.close(fd)
        with suppress(OSError):
            os.unlink(name)
    return True


def at_size_limit(path: Path) -> bool:
    """Whether the history or its WAL has grown to within a probe of ``ulimit -f``
    (writing past it is an I/O error to SQLite, though the disk has room)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft == resource.RLIM_INFINITY:
        return False
    for suffix in ("", "-wal", "-shm"):
        with suppress(OSError):
            if os.stat(f"{path}{suffix}").st_size + PROBE_BYTES > soft:
                return True
    return False


class Connection(sqlite3.Connection):
    """A connection whose failed statements raise :class:`HistoryError` with advice,
    not ``sqlite3.OperationalError`` (a traceback, and no word on what to do).
    Constraint and programming errors are bugs and stay as they are."""

    def __init__(self, database: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        super().__init__(database, *args, **kwargs)  # type: ignore[arg-type]
        self.path = Path(database)

    def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)  # type: ignore[arg-type]
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
                raise  # IntegrityError and the like: a bug, with its traceback
            raise explain(exc, self.path) from exc

    def executemany(self, sql: str, parameters: object, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)  # type: ignore[arg-type]
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
                raise
            raise explain(exc, self.path) from exc
