"""The CLI's error boundary: a full disk nobody below explained is still one line."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from ponder.cli.errors import report


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_a_write_refused_for_want_of_room_is_one_line(
    code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report(OSError(code, "No space left on device", "/data/x.json")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ponder: error: the disk is full writing ")


def test_sqlite_full_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    assert report(exc) == 1
    assert capsys.readouterr().err.startswith("ponder: error: the disk is full")


def test_other_os_errors_are_still_bugs() -> None:
    with pytest.raises(PermissionError):
        report(PermissionError(errno.EACCES, "Permission denied"))
