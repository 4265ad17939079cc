"""The download errors, and the wording their messages share."""

from __future__ import annotations

from ponder.errors import ExitCode, PonderError


class DownloadError(PonderError):
    exit_code = ExitCode.ERROR


class AccessError(DownloadError):
    """401/403: a gated or private repo, or a missing or wrong token."""


class HashMismatchError(DownloadError):
    pass


class DiskSpaceError(DownloadError):
    pass


class UnverifiedError(DownloadError):
    """Nothing to check a file against: no sha256 from the Hub or the catalog."""


def short(exc: BaseException) -> str:
    """An exception's first line, cut to 160 characters, to quote in a message."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def gb(n: int) -> str:
    """A size as download messages print it: GB from 0.1 GB, MB below."""
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
