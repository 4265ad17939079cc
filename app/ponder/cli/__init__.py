"""The ``ponder`` command: headless runs for pipes and scripts, models, chats, the chat UI.

Headless output is an API. stdout carries the answer only (or one JSON object with
``--json``, or one JSON event per line with ``--jsonl``). Reasoning, progress and
errors go to stderr. Every failure a user can cause ends in one line on stderr and
a documented exit code (:class:`ponder.errors.ExitCode`), never a traceback.

One module per job: :mod:`.app` (the click group), :mod:`.run`, :mod:`.models`,
:mod:`.chats`, :mod:`.machine`, :mod:`.chat_ui` (the commands), :mod:`.options`
(flags, the sampling ones generated from :mod:`ponder.sampling`), :mod:`.output`
(the run writers), :mod:`.progress` (pull progress, open events), :mod:`.errors`
(failures to lines and exit codes), :mod:`.interrupts` (Ctrl-C).

Importing this package loads nothing the interpreter has not loaded already, so a
Ctrl-C is ours as early as possible: :func:`main` first takes it over (exit 130,
one line, no traceback while modules import), then imports click and the
commands, and the commands import the session only when they run.
"""

from __future__ import annotations

from ponder.cli.quiet import exit_quietly

TYPE_CHECKING = False  # typing itself costs ~10 ms, the window for a stray traceback
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ponder.cli.context import SessionFactory


def main(
    argv: Sequence[str] | None = None, *, session_factory: SessionFactory | None = None
) -> int:
    """Run ``ponder ARGV`` (default: ``sys.argv[1:]``) and return its exit code.

    ``session_factory`` stands in for :func:`ponder.session.open_session` (tests).
    """
    import signal

    try:
        previous = signal.signal(signal.SIGINT, exit_quietly)
    except ValueError:  # not the main thread: signals are not ours to take
        previous = exit_quietly

    def restore() -> None:
        if previous is not exit_quietly:
            # None: a handler not set from Python; Python's own is the nearest to it.
            handler = signal.default_int_handler if previous is None else previous
            signal.signal(signal.SIGINT, handler)

    try:
        import sys

        from ponder.cli.app import ponder
        from ponder.cli.context import Env, default_session
        from ponder.cli.errors import report

        env = Env(session_factory or default_session)
        args = list(sys.argv[1:] if argv is None else argv)
        try:
            restore()  # from here Ctrl-C is a KeyboardInterrupt (or, in a command, a cancel)
            result = ponder.main(args, prog_name="ponder", standalone_mode=False, obj=env)
        except SystemExit as exc:  # shell completion exits from inside click
            if exc.code is None or isinstance(exc.code, int):
                return exc.code or 0
            return 1
        except (Exception, KeyboardInterrupt) as exc:
            return report(exc)
        return result if isinstance(result, int) else 0
    finally:
        restore()
