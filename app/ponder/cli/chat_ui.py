"""``ponder chat [MODEL]`` (and ``ponder`` alone): the Textual chat UI.

``ponder.tui`` is imported inside the command only, so headless commands never
load textual.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ponder.cli.context import Env, read_text
from ponder.cli.interrupts import quiet_while_importing
from ponder.errors import ExitCode, UsageError


@click.command(
    "chat",
    short_help="open the chat UI (the default when no command is given)",
    help="Open the chat UI. Also what `ponder` alone does.",
)
@click.argument("model", required=False)
@click.option(
    "--grammar",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="GBNF grammar for every reply",
)
@click.pass_obj
def chat(env: Env, model: str | None = None, grammar: Path | None = None) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the chat UI needs a terminal",
            hint='for pipes and scripts use `ponder run MODEL "prompt"`',
        )
    grammar_text = read_text(grammar, "grammar") if grammar else None
    with quiet_while_importing():
        from ponder.tui.app import PonderApp

    with env.session() as session:
        session.require_history()  # a broken history is one line here, not a crash later
        PonderApp(session, model=model, grammar=grammar_text).run()
    return ExitCode.OK
