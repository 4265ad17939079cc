"""The ``ponder`` click group: the commands, ``--version``, and ``ponder`` alone.

``ponder`` without a command opens the chat UI. Shell completion comes from click:
``eval "$(_PONDER_COMPLETE=bash_source ponder)"`` (``zsh_source``, ``fish_source``).
"""

from __future__ import annotations

from typing import Any

import click

from ponder import __version__
from ponder.cli import chat_ui, chats, machine, models, remote, run
from ponder.cli.errors import EXIT_CODES_HELP, report
from ponder.cli.options import OrderedGroup


class PonderGroup(OrderedGroup):
    """The top group: Ctrl-C and a closed pipe in a command are reported here.

    click would turn a Ctrl-C into a blank line and ``Abort``, and a closed pipe into
    exit 1; :func:`ponder.cli.errors.report` gives them their documented codes instead.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, BrokenPipeError) as exc:
            return report(exc)


CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.group(
    "ponder",
    cls=PonderGroup,
    invoke_without_command=True,
    no_args_is_help=False,
    epilog=EXIT_CODES_HELP,
    context_settings=CONTEXT,
)
@click.version_option(__version__, "--version", prog_name="ponder", message="%(prog)s %(version)s")
@click.pass_context
def ponder(ctx: click.Context) -> int | None:
    """Run distilled reasoning models locally."""
    if ctx.invoked_subcommand is None:
        code: int = ctx.invoke(chat_ui.chat)
        return code
    return None


for command in (
    run.run,
    chats.chats,
    models.pull,
    models.list_models,
    models.remove,
    models.import_model,
    models.verify,
    machine.doctor,
    machine.fit,
    machine.setup,
    models.catalog,
    remote.remote,
    chat_ui.chat,
):
    ponder.add_command(command)
