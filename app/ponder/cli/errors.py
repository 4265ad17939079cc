"""The one place where a failure becomes a line on stderr and an exit code.

Every failure a user can cause ends as ``ponder: error: MESSAGE — HINT`` (one line)
and a documented exit code (:class:`ponder.errors.ExitCode`), never a traceback:

* a :class:`~ponder.errors.PonderError` carries its own code;
* click's usage errors (unknown option or command, missing argument, bad value) are
  exit 2, in the same one-line format rather than click's "Usage: … Error: …" block;
* Ctrl-C is exit 130 (``ponder: interrupted``, then what was kept when an
  :class:`~ponder.errors.Interrupted` says so; while modules import,
  :func:`ponder.cli.quiet.exit_quietly` says the same);
* a closed stdout pipe (``ponder run … | head``) is a quiet exit 0;
* a write refused for want of room that no layer below explained (``ENOSPC``,
  ``EDQUOT``, ``EFBIG``, or SQLite's "database or disk is full") is exit 1 and one line:
  a full disk is the user's to fix, not a bug.

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys

import click

from ponder.cli.quiet import INTERRUPTED
from ponder.errors import ExitCode, Interrupted, PonderError, is_disk_full

# The epilog of `ponder --help` and `ponder run --help` ("\b": click keeps the lines).
EXIT_CODES_HELP = """\b
exit codes:
  0    success
  1    other error (I/O, malformed config or catalog)
  2    usage error (bad arguments, empty prompt, invalid UTF-8 input)
  3    model not found
  4    model cannot load (not a GGUF, truncated, corrupt, out of memory)
  5    prompt exceeds the context window
  130  interrupted (Ctrl-C); the partial reply is saved
"""


def error_line(message: str, hint: str | None = None) -> str:
    line = f"ponder: error: {message}"
    if hint:
        line += f" — {hint}"
    return line


def print_error(message: str, hint: str | None = None) -> None:
    print(error_line(message, hint), file=sys.stderr)


def report(exc: BaseException) -> int:
    """Print what ``exc`` means for the user and return the exit code; re-raise a bug."""
    match exc:
        case Interrupted():  # Ctrl-C is not a failure: say what was kept, exit 130
            hint = f" — {exc.hint}" if exc.hint else ""
            print(f"{INTERRUPTED}: {exc.message}{hint}", file=sys.stderr)
            return exc.exit_code
        case PonderError():
            print_error(exc.message, exc.hint)
            return exc.exit_code
        case click.exceptions.Exit():
            return exc.exit_code  # --help, --version: already printed
        case click.UsageError():
            print_error(*_usage_message(exc))
            return ExitCode.USAGE
        case click.ClickException():
            print_error(_sentence(exc.format_message()))
            return exc.exit_code
        case KeyboardInterrupt() | click.exceptions.Abort():
            print(INTERRUPTED, file=sys.stderr)
            return ExitCode.INTERRUPTED
        case BrokenPipeError():
            silence_stdout()
            return ExitCode.OK
    if _disk_full(exc):
        where = f" writing {exc.filename}" if isinstance(exc, OSError) and exc.filename else ""
        print_error(f"the disk is full{where} ({exc})", "free some space and try again")
        return ExitCode.ERROR
    raise exc


def _disk_full(exc: BaseException) -> bool:
    if is_disk_full(exc):
        return True
    sqlite3 = sys.modules.get("sqlite3")  # loaded only if something used it
    return (
        sqlite3 is not None
        and isinstance(exc, sqlite3.OperationalError)
        and getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"
    )


def _usage_message(exc: click.UsageError) -> tuple[str, str]:
    command = exc.ctx.command_path if exc.ctx is not None else "ponder"
    see = f"see `{command} --help`"
    if isinstance(exc, click.NoSuchOption):
        if exc.possibilities:
            options = " or ".join(sorted(exc.possibilities))
            return (
                f"no such option: {exc.option_name}",
                f"did you mean {options}? See `{command} --help`",
            )
        return f"no such option: {exc.option_name}", see
    return _sentence(exc.format_message()), see


def _sentence(text: str) -> str:
    """click's "Missing argument 'MODEL'." as the rest of the line: "missing argument 'MODEL'"."""
    text = " ".join(text.split()).removesuffix(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def silence_stdout() -> None:
    """After a closed pipe (`ponder run ... | head`), stop Python's flush from failing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
