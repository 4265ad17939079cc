"""``ponder chats list | show | search | export | rm``: the saved chats.

All through the session's history (:meth:`Session.require_history`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ponder.cli.context import Env, write_file
from ponder.cli.options import OrderedGroup, PositiveInt
from ponder.errors import ExitCode

if TYPE_CHECKING:
    from ponder.session import ChatSummary, History


@contextmanager
def _history(env: Env) -> Iterator[History]:
    with env.session() as session:
        yield session.require_history()


@click.group(
    "chats",
    cls=OrderedGroup,
    short_help="list, show, search, export and remove saved chats",
    help="List, show, search, export and remove saved chats.",
    no_args_is_help=False,  # `ponder chats` alone: a usage error, exit 2
)
def chats() -> None:
    pass


def _command(name: str, short_help: str) -> Callable[[Callable[..., int]], click.Command]:
    return chats.command(
        name, short_help=short_help, help=short_help[0].upper() + short_help[1:] + "."
    )


@_command("list", "saved chats, newest first")
@click.option(
    "-n",
    "--limit",
    type=PositiveInt(),
    default=50,
    show_default=True,
    metavar="N",
    help="at most N chats",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_obj
def list_chats(env: Env, limit: int, as_json: bool) -> int:
    with _history(env) as history:
        found = history.list_chats(limit=limit)
    if as_json:
        print(json.dumps([_summary_json(c) for c in found], indent=2))
        return ExitCode.OK
    if not found:
        print("no saved chats yet; `ponder run MODEL PROMPT` starts one", file=sys.stderr)
    for c in found:
        model = c.model or "-"
        when = c.updated_at[:16].replace("T", " ")
        print(f"{c.id:>5}  {when}  {model:<24}  {c.message_count:>3}  {c.title}")
    return ExitCode.OK


@_command("show", "print a chat")
@click.argument("chat_id", metavar="ID", type=int)
@click.option(
    "--candidates", is_flag=True, help="under a voted reply, every candidate, not just the count"
)
@click.pass_obj
def show(env: Env, chat_id: int, candidates: bool) -> int:
    note = None if candidates else f"candidates: `ponder chats show {chat_id} --candidates`"
    with _history(env) as history:
        print(history.export_markdown(chat_id, candidates_note=note), end="")
    return ExitCode.OK


@_command("search", "full-text search over answers and prompts")
@click.argument("text", nargs=-1, required=True)
@click.option("--reasoning", is_flag=True, help="search the reasoning too")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_obj
def search(env: Env, text: tuple[str, ...], reasoning: bool, as_json: bool) -> int:
    with _history(env) as history:
        hits = history.search(" ".join(text), include_reasoning=reasoning)
    if as_json:
        rows = [dataclasses.asdict(h) for h in hits]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for h in hits:
            print(f"{h.chat_id:>5}  {h.chat_title}: {h.snippet}")
    if not hits:
        print("no matches", file=sys.stderr)
    return ExitCode.OK


@_command("export", "export a chat with its reasoning")
@click.argument("chat_id", metavar="ID", type=int)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "json"]),
    default="md",
    show_default=True,
    help="Markdown, or the documented JSON document",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="write to FILE instead of stdout",
)
@click.pass_obj
def export(env: Env, chat_id: int, fmt: str, output: Path | None) -> int:
    with _history(env) as history:
        text = history.export_json(chat_id) if fmt == "json" else history.export_markdown(chat_id)
    if output:
        write_file(output, text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return ExitCode.OK


@_command("rm", "delete a chat")
@click.argument("chat_id", metavar="ID", type=int)
@click.pass_obj
def rm(env: Env, chat_id: int) -> int:
    with env.session() as session:
        session.delete_chat(chat_id)  # its saved states go with it
    print(f"deleted chat {chat_id}", file=sys.stderr)
    return ExitCode.OK


def _summary_json(c: ChatSummary) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "model": c.model,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "message_count": c.message_count,
    }
