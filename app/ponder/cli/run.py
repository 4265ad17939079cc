"""``ponder run MODEL [PROMPT...]``: answer one prompt, for pipes and scripts.

The arguments enter the session once, as one :class:`~ponder.session.RunRequest`
given to :meth:`Session.run <ponder.session.Session.run>`; the reply that comes
back is written by :mod:`ponder.cli.output`. Ctrl-C sets a cancel event that the
generation loop checks after every token, so the partial reply is saved (marked
interrupted) before the process exits with 130.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ponder.chat_settings import MAX_THINK_BUDGET, MAX_VOTES
from ponder.cli import output
from ponder.cli.context import Env, read_text
from ponder.cli.errors import EXIT_CODES_HELP
from ponder.cli.interrupts import cancel_on_sigint
from ponder.cli.options import (
    IntBetween,
    PositiveInt,
    exclusive,
    sampling_options,
    sampling_values,
)
from ponder.cli.progress import OpenObserver
from ponder.errors import ExitCode, PonderError, UsageError
from ponder.sampling import Number


def read_prompt(parts: Sequence[str], stdin: Any) -> str:
    """The argument prompt, then stdin (when it is not a terminal), joined by a blank line."""
    pieces = [checked_text(" ".join(parts), "the prompt")] if parts else []
    if stdin is not None and not stdin.isatty():
        raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(
                    f"stdin is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                    hint="convert it first, e.g. `iconv -f latin1 -t utf-8`",
                ) from None
        if raw.strip():
            pieces.append(raw.rstrip("\n"))
    prompt = "\n\n".join(p for p in pieces if p.strip())
    if not prompt.strip():
        raise UsageError(
            "the prompt is empty",
            hint='give one as an argument or on stdin: ponder run MODEL "..."',
        )
    return prompt


def checked_text(text: str, what: str) -> str:
    """``text`` from the command line, refused (exit 2) unless it is valid UTF-8.

    Python decodes an argument's bytes with ``surrogateescape``: a byte that is not
    UTF-8 arrives as a lone surrogate, which fails later, deep in the engine, when
    the text is encoded again. Refuse it here, naming the byte as stdin does."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raw = os.fsencode(text)
        offset = len(os.fsencode(text[: exc.start]))
        raise UsageError(
            f"{what} is not valid UTF-8 (byte 0x{raw[offset]:02x} at offset {offset})",
            hint="convert it first, e.g. `iconv -f latin1 -t utf-8`",
        ) from None
    return text


PATH = click.Path(path_type=Path)


@click.command(
    "run",
    short_help="answer one prompt (from arguments and/or stdin)",
    help="Answer one prompt. The answer goes to stdout; the reasoning to stderr.",
    epilog=EXIT_CODES_HELP,
)
@click.argument("model")
@click.argument("prompt", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object at the end")
@click.option("--jsonl", is_flag=True, help="stream one JSON event per line")
@click.option(
    "--reasoning",
    type=click.Choice(output.REASONING_MODES),
    default=None,
    help="where the thinking goes (default: stderr, dimmed on a terminal)",
)
@click.option("--system", help="system prompt (folded into the user turn for R1 models)")
@click.option(
    "--think-budget",
    type=IntBetween(0, MAX_THINK_BUDGET),
    metavar="N",
    help="close the thinking after N tokens, then answer (0: no thinking)",
)
@click.option("--no-think", is_flag=True, help="answer at once, without thinking (budget 0)")
@click.option(
    "--votes",
    type=IntBetween(2, MAX_VOTES),
    metavar="N",
    help="sample N answers in parallel and print the most common (self-consistency)",
)
@sampling_options
@click.option("--ctx", "ctx_size", type=PositiveInt(), metavar="N", help="context size in tokens")
@click.option("--threads", type=PositiveInt(), metavar="N", help="CPU threads")
@click.option("--gpu-layers", type=int, metavar="N", help="layers to offload to the GPU (-1: all)")
@click.option("--grammar", type=PATH, metavar="FILE", help="GBNF grammar file")
@click.option(
    "--chat-format",
    metavar="NAME",
    help="built-in template: deepseek-r1, chatml, llama3, gemma, plain",
)
@click.option("--chat-template", type=PATH, metavar="FILE", help="Jinja chat template file")
@click.option("--no-save", is_flag=True, help="do not save this chat")
@click.option("-c", "--continue", "cont", is_flag=True, help="continue the last chat")
@click.option("--chat", "chat_id", type=int, metavar="ID", help="continue chat ID")
@click.option("-v", "--verbose", is_flag=True, help="print the load plan and its memory estimate")
@click.pass_context
def run(
    ctx: click.Context,
    /,
    model: str,
    prompt: tuple[str, ...],
    as_json: bool,
    jsonl: bool,
    reasoning: str | None,
    system: str | None,
    think_budget: int | None,
    no_think: bool,
    votes: int | None,
    ctx_size: int | None,
    threads: int | None,
    gpu_layers: int | None,
    grammar: Path | None,
    chat_format: str | None,
    chat_template: Path | None,
    no_save: bool,
    cont: bool,
    chat_id: int | None,
    verbose: bool,
    **sampling: Number | None,
) -> int:
    exclusive(ctx, {"--json": as_json, "--jsonl": jsonl})
    exclusive(ctx, {"-c/--continue": cont, "--chat": chat_id is not None})
    exclusive(ctx, {"--think-budget": think_budget is not None, "--no-think": no_think})
    text = read_prompt(prompt, sys.stdin)
    system = checked_text(system, "--system") if system is not None else None
    grammar_text = read_text(grammar, "grammar") if grammar else None
    env: Env = ctx.obj
    # Ctrl-C sets ``cancel`` from here on, before the session opens: a KeyboardInterrupt
    # raised in the meantime could land in a callback or a __del__, where Python only
    # prints it and goes on (a run then answered in full after a Ctrl-C, rarely).
    with cancel_on_sigint() as cancel, env.session() as session:
        from ponder.session import ModelOptions, ReplyRequest, RunRequest

        request = RunRequest(
            model=model,
            reply=ReplyRequest(
                prompt=text,
                chat_id=chat_id,
                system=system,
                save=not no_save,
                overrides=sampling_values(sampling),
                grammar=grammar_text,
                think_budget=0 if no_think else think_budget,
                votes=votes or 1,
            ),
            options=ModelOptions(
                n_ctx=ctx_size,
                n_threads=threads,
                n_gpu_layers=gpu_layers,
                chat_format=chat_format,
                chat_template=chat_template,
            ),
            continue_last=cont,
        )
        mode = reasoning or session.settings.reasoning
        observer = OpenObserver(verbose=verbose)
        try:
            reply = session.run(request, on_event=observer, cancel=cancel)
        finally:
            observer.close()
        try:
            if as_json:
                finished = reply.drain()
                output.write_json(reply, finished, sys.stdout)
            elif jsonl:
                finished = output.write_jsonl(reply, sys.stdout)
            else:
                finished = output.write_text(reply, mode, sys.stdout, sys.stderr)
        except PonderError:
            # Failed mid-reply (a full disk): end the thinking's line, so the error
            # line that follows stands on its own.
            if mode == "stderr" and reply.reasoning and not reply.answer:
                print(file=sys.stderr)
            raise
        finally:
            # A closed pipe or a second Ctrl-C leaves the stream half-read: end it
            # now, while the history is open, so the partial reply is recorded.
            reply.close()
    if finished.finish_reason == "interrupted":
        print("ponder: interrupted; the partial reply was saved", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return ExitCode.OK
