"""`ponder` commands in-process: click's parsing, the writers and the errors, over a session
with the scripted engine (tests/support/scripted.py) instead of llama.cpp. Fast, and a check of
what the subprocess tests in test_cli.py see on the real model."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ponder.catalog import load_catalog
from ponder.cli import main
from ponder.config import load_settings
from ponder.history import History
from ponder.paths import default_paths
from ponder.session import Session
from support.machines import machine
from support.scripted import Script, loader

PROMPT = "What is 17*23?"
REASONING_BIT = "17 times 20 is 340"  # from scripted.R1_REASONING
ANSWER_START = "**17 × 23 = 391**"  # scripted.R1_ANSWER's first line


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    history: History
    model: str  # a GGUF file; its name is the model's name
    opened: list[Session]
    run: Callable[..., Result]

    def ask(self, *args: str) -> Result:
        """`ponder run MODEL ARGS` with the R1 template, which starts the reply thinking."""
        return self.run("run", self.model, "--chat-format", "deepseek-r1", *args)


@pytest.fixture()
def cli(
    gemma_path: Path,
    ponder_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    """`ponder ARGS` through ``main()``, with a session on the scripted engine and a
    recorded 8 GB laptop (no probing, no llama.cpp); stdin is empty and not a terminal."""
    paths = default_paths()
    history = History.open(paths.history_db)
    laptop = machine("cpu_laptop_8gb")
    opened: list[Session] = []

    def session_factory() -> Session:
        session = Session(
            settings=load_settings(paths),
            paths=paths,
            catalog=load_catalog(),
            history=history,
            load_engine=loader(Script()),
            hardware_profile=laptop,
        )
        opened.append(session)
        return session

    def run(*args: str | Path, stdin: bytes = b"") -> Result:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        capsys.readouterr()
        code = main([str(a) for a in args], session_factory=session_factory)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return Cli(history, str(gemma_path), opened, run)


def test_text_puts_the_answer_on_stdout_and_the_reasoning_on_stderr(cli: Cli) -> None:
    result = cli.ask(PROMPT)
    assert result.code == 0, result.err
    assert result.out.startswith(ANSWER_START) and result.out.endswith("```\n")
    assert REASONING_BIT not in result.out and "think>" not in result.out
    assert REASONING_BIT in result.err and ANSWER_START not in result.err
    assert "\x1b[" not in result.err  # not a terminal: not dimmed


def test_json_is_one_object_with_the_documented_fields(cli: Cli) -> None:
    result = cli.ask(PROMPT, "--json")  # an option after the prompt
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert list(doc) == [
        "model",
        "chat_id",
        "answer",
        "reasoning",
        "finish_reason",
        "usage",
        "timings",
        "timings_source",
        "usage_source",
        "think_budget",
        "votes",
    ]
    assert doc["timings_source"] == doc["usage_source"] == "local"
    assert doc["think_budget"] is None and doc["votes"] is None
    assert doc["model"] == Path(cli.model).name and doc["finish_reason"] == "stop"
    assert doc["answer"].startswith(ANSWER_START) and REASONING_BIT in doc["reasoning"]
    usage = doc["usage"]
    assert usage["completion_tokens"] == usage["reasoning_tokens"] + usage["answer_tokens"] > 0
    assert set(doc["timings"]) >= {"load_s", "time_to_first_token_s", "thinking_s", "total_s"}
    saved = cli.history.get_chat(doc["chat_id"]).messages
    assert [m.role for m in saved] == ["user", "assistant"] and saved[1].content == doc["answer"]
    assert result.err == ""  # --json: nothing but errors on stderr


def test_jsonl_streams_start_deltas_and_finish(cli: Cli) -> None:
    result = cli.ask("--jsonl", "--no-save", PROMPT)
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert events[0] == {"type": "start", "model": Path(cli.model).name, "chat_id": None}
    assert events[-1]["type"] == "finish" and events[-1]["finish_reason"] == "stop"
    kinds = [e["type"] for e in events[1:-1]]
    first_answer = kinds.index("answer")
    assert set(kinds[:first_answer]) == {"reasoning"} and set(kinds[first_answer:]) == {"answer"}
    answer = "".join(e["text"] for e in events if e["type"] == "answer")
    assert answer.startswith(ANSWER_START)
    assert cli.history.list_chats() == []  # --no-save


def test_reasoning_hide_and_inline(cli: Cli) -> None:
    hidden = cli.ask("--reasoning", "hide", PROMPT)
    assert hidden.code == 0 and hidden.err == ""
    assert hidden.out.startswith(ANSWER_START)
    inline = cli.ask("--reasoning", "inline", PROMPT)
    assert inline.code == 0 and inline.err == ""
    assert inline.out.startswith("<think>\n") and REASONING_BIT in inline.out
    assert f"\n</think>\n\n{ANSWER_START}" in inline.out


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--temperature", "5"],
            "ponder: error: --temperature 5 is out of range — use a value from 0 to 2",
        ),
        (["--top-k", "1.5"], "ponder: error: --top-k 1.5 is not a whole number — use at least 0"),
        (["--json", "--jsonl"], "ponder: error: --json and --jsonl cannot be used together"),
        (["-c", "--chat", "1"], "ponder: error: -c/--continue and --chat cannot be used together"),
        (["--frobnicate"], "ponder: error: no such option: --frobnicate"),
        (
            ["--think-budget", "-1"],
            "ponder: error: --think-budget -1 is out of range — give a whole number from 0",
        ),
        (
            ["--think-budget", "many"],
            "ponder: error: --think-budget many is not a whole number",
        ),
        (["--votes", "1"], "ponder: error: --votes 1 is out of range — give a whole number from 2"),
        (["--votes", "17"], "ponder: error: --votes 17 is out of range"),
        (
            ["--think-budget", "5", "--no-think"],
            "ponder: error: --think-budget and --no-think cannot be used together",
        ),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(cli: Cli, args: list[str], line: str) -> None:
    result = cli.ask(PROMPT, *args)
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1 and result.err.startswith(line), result.err
    assert cli.opened == []  # refused before any session (or model) was opened


def test_think_budget_closes_the_thinking_and_json_says_so(cli: Cli) -> None:
    result = cli.ask(PROMPT, "--think-budget", "5", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["think_budget"] == {"tokens": 5, "hit": True}
    assert doc["usage"]["reasoning_tokens"] == 5
    assert doc["answer"].startswith(ANSWER_START)  # the script answers once told to
    saved = cli.history.get_chat(doc["chat_id"]).messages[-1]
    assert saved.params["think_budget"] == 5


def test_votes_print_the_winner_on_stdout_and_the_tally_on_stderr(cli: Cli) -> None:
    # The scripted engine decodes one sequence: the candidates run one after another,
    # and each answers 391.
    result = cli.ask(PROMPT, "--votes", "3")
    assert result.code == 0, result.err
    assert result.out.startswith(ANSWER_START) and result.out.count(ANSWER_START) == 1
    assert "3 of 3 agree: 391" in result.err
    assert result.err.count("── candidate") == 3 and REASONING_BIT in result.err
    hidden = cli.ask(PROMPT, "--votes", "3", "--reasoning", "hide")
    assert hidden.err.strip() == "3 of 3 agree: 391" and hidden.out == result.out


def test_votes_json_has_every_candidate_and_the_tally(cli: Cli) -> None:
    result = cli.ask(PROMPT, "--votes", "2", "--seed", "5", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    votes = doc["votes"]
    assert votes["n"] == 2 and votes["winner"] == "391" and votes["tally"] == {"391": 2}
    assert [c["seed"] for c in votes["candidates"]] == [5, 6]
    assert all(c["extracted"] == "391" for c in votes["candidates"])
    assert doc["answer"] == votes["candidates"][votes["winner_candidate"]]["answer"]
    saved = cli.history.get_chat(doc["chat_id"]).messages[-1]
    assert [c.extracted for c in cli.history.candidates(saved.id)] == ["391", "391"]


def test_votes_jsonl_tags_each_candidate(cli: Cli) -> None:
    result = cli.ask(PROMPT, "--votes", "2", "--jsonl", "--no-save")
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-2:] == ["votes", "finish"]
    assert kinds.count("candidate_finish") == 2
    tagged = {e["candidate"] for e in events if e["type"] in ("reasoning", "answer")}
    assert tagged == {0, 1}
    assert events[-2]["summary"] == "2 of 2 agree: 391"


def test_a_chat_continues_with_its_own_settings_and_flags_win(cli: Cli) -> None:
    chat_id = cli.history.create_chat(
        title="settings", model=None, settings={"temperature": 0.3, "max_tokens": 7}
    )

    def last_reply_params() -> dict[str, object]:
        return cli.history.get_chat(chat_id).messages[-1].params

    by_id = cli.ask("--chat", str(chat_id), "--json", PROMPT)
    assert by_id.code == 0, by_id.err
    doc = json.loads(by_id.out)
    assert doc["chat_id"] == chat_id
    assert doc["finish_reason"] == "length" and doc["usage"]["completion_tokens"] == 7
    params = last_reply_params()
    assert params["temperature"] == 0.3 and params["max_tokens"] == 7

    # -c continues the most recent chat: this one, with the same saved settings,
    # except for what the command line says.
    again = cli.ask("-c", "--temperature", "0.9", "--json", "and times 3?")
    assert again.code == 0, again.err
    assert json.loads(again.out)["chat_id"] == chat_id
    params = last_reply_params()
    assert params["temperature"] == 0.9 and params["max_tokens"] == 7
    roles = [m.role for m in cli.history.get_chat(chat_id).messages]
    assert roles == ["user", "assistant", "user", "assistant"]


def test_chats_go_through_the_session(cli: Cli) -> None:
    doc = json.loads(cli.ask("--json", "Tell me about zebras").out)
    listed = cli.run("chats", "list", "--json")
    assert [c["id"] for c in json.loads(listed.out)] == [doc["chat_id"]]
    found = cli.run("chats", "search", "zebras")
    assert found.code == 0 and found.out.startswith(f"{doc['chat_id']:>5}  Tell me about zebras")
    removed = cli.run("chats", "rm", str(doc["chat_id"]))
    assert removed.code == 0 and removed.err == f"deleted chat {doc['chat_id']}\n"
    gone = cli.run("chats", "show", str(doc["chat_id"]))
    assert gone.code == 1 and gone.err.startswith(
        f"ponder: error: no chat with id {doc['chat_id']}"
    )
    assert all(s.current is None for s in cli.opened)  # every session was closed


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_comes_from_click(
    cli: Cli, shell: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_PONDER_COMPLETE", f"{shell}_source")
    result = cli.run()
    assert result.code == 0, result.err
    assert "_PONDER_COMPLETE" in result.out and "ponder" in result.out
    assert f"{shell}_complete" in result.out  # what the script asks for on each TAB
    assert cli.opened == []
