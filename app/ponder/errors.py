"""One error hierarchy, each error carrying the process exit code it maps to.

Front ends catch :class:`PonderError`, print its one-line message (and hint), and
exit with ``exit_code``. A traceback is only for bugs, never for a user mistake.
"""

from __future__ import annotations

import errno
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of the ``ponder`` command (see README.md)."""

    OK = 0
    ERROR = 1  # anything else that went wrong: I/O, a malformed catalog or config
    USAGE = 2  # bad arguments or input: empty prompt, invalid UTF-8, unknown option
    MODEL_NOT_FOUND = 3  # the model reference names nothing installed or in the catalog
    MODEL_LOAD = 4  # the file is not a usable GGUF, or llama.cpp could not load it
    CONTEXT_OVERFLOW = 5  # the prompt does not fit in the context window
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), partial work saved


class PonderError(Exception):
    """Base of every error a user can cause or fix. ``hint`` says what to do."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(PonderError):
    exit_code = ExitCode.USAGE


class ConfigError(PonderError):
    """A malformed config file or catalog: names the file, entry and field."""

    exit_code = ExitCode.ERROR


class CatalogError(ConfigError):
    pass


class ModelNotFoundError(PonderError):
    exit_code = ExitCode.MODEL_NOT_FOUND


class ModelLoadError(PonderError):
    exit_code = ExitCode.MODEL_LOAD


class GGUFError(ModelLoadError):
    """The file is missing, not GGUF, truncated, or has a corrupt header."""


class ContextOverflowError(PonderError):
    exit_code = ExitCode.CONTEXT_OVERFLOW


class ChatNotFoundError(PonderError):
    exit_code = ExitCode.ERROR


class Interrupted(PonderError):
    """Raised where a cancelled operation cannot return a partial result."""

    exit_code = ExitCode.INTERRUPTED


class DiskFullError(PonderError):
    """No room to write: the disk is full, or a quota or a file-size limit is reached.
    The message says what was kept; the hint, what to do."""

    exit_code = ExitCode.ERROR


# ENOSPC: no space left; EDQUOT: over quota; EFBIG: over the file-size limit (ulimit -f).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write refused for want of room (see :data:`DISK_FULL_ERRNOS`)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS
