"""What every command gets (click's ``obj``): how to open the session, and small helpers.

The session is made by a factory, :func:`ponder.session.open_session` unless the
caller of :func:`ponder.cli.main` passes another (tests pass one with a scripted
engine and run commands in-process). Commands import the session inside their
functions, so ``ponder --help`` never loads pydantic, numpy or llama.cpp.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ponder.cli.interrupts import quiet_while_importing
from ponder.errors import UsageError

if TYPE_CHECKING:
    from ponder.session import Session

SessionFactory = Callable[[], "Session"]


def default_session() -> Session:
    with quiet_while_importing():  # the heavy imports: pydantic, numpy, llama.cpp
        from ponder.session import open_session
    return open_session()


@dataclass(frozen=True)
class Env:
    session_factory: SessionFactory = default_session

    @contextmanager
    def session(self) -> Iterator[Session]:
        """The session for one command, closed (model unloaded, history closed) after."""
        session = self.session_factory()
        try:
            yield session
        finally:
            session.close()


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc}") from None


def write_file(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def confirm(question: str, *, refusal: str, hint: str) -> bool:
    """Ask on the terminal; without one, refuse (exit 2) rather than guess."""
    if not sys.stdin.isatty():
        raise UsageError(refusal, hint=hint)
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:  # Ctrl-D: no
        print(file=sys.stderr)
        return False
    return answer.strip().lower() in {"y", "yes"}
