"""The remote engine against a real llama.cpp server (xllamacpp), serving the R1-templated Gemma.

The server runs in its own process on 127.0.0.1 (tests/support/llama_server.py) with an API
key. Its old-style R1 template does not prefill ``<think>`` and llama-server then streams
everything as ``content`` ("Content-only" format, as seen here), so the reasoning split is
Ponder's splitter on real tokens; a grammar makes the 270M base model write an R1 reply.
Replies are kept a few tokens long: the shared machines decode at about a token a second.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.errors import ExitCode
from ponder.events import AnswerDelta, ReasoningDelta
from ponder.prompt import R1_POLICY, Turn
from ponder.remote import (
    RemoteAuthError,
    RemoteContextOverflowError,
    RemoteEngine,
    RemoteModelNotFoundError,
    RemoteSettings,
)
from ponder.sampling import SamplingParams
from ponder.session import ReplyRequest, open_session
from support.cli import assert_clean_error, ponder
from support.llama_server import REMOTE_ALIAS, REMOTE_KEY, LlamaServer

pytestmark = pytest.mark.real_model

KEY = REMOTE_KEY
ALIAS = REMOTE_ALIAS
TURNS = [Turn("system", "Answer briefly."), Turn("user", "Is the sky blue?")]
SHORT = 'root ::= "<think>" "it is day" "</think>" " Yes."\n'
LONG = 'root ::= "<think>" [a-z ]{300,400} "</think>" "done."\n'


@pytest.fixture(scope="module")
def server(llama_server: LlamaServer) -> LlamaServer:
    return llama_server


@pytest.fixture(scope="module")
def engine(server: LlamaServer) -> Iterator[RemoteEngine]:
    settings = RemoteSettings(server.url, api_key=KEY, api_key_env="LAB_KEY", timeout_s=600)
    remote = RemoteEngine.connect(settings, model=None, policy=R1_POLICY)
    yield remote
    remote.close()


def test_probe_finds_llama_server(engine: RemoteEngine) -> None:
    assert engine.info.kind == "llama-server"
    assert engine.info.n_ctx == 4096
    assert engine.model == ALIAS  # the server's only model


def test_streams_reasoning_apart_from_the_answer(engine: RemoteEngine) -> None:
    """A grammar (llama-server's `grammar` field), the split, usage and server timings."""
    stream = engine.stream(TURNS, SamplingParams(grammar=SHORT, seed=1, max_tokens=40))
    deltas = list(stream)
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    answer = "".join(d.text for d in deltas if isinstance(d, AnswerDelta))
    assert (reasoning, answer) == ("it is day", "Yes.")
    first_answer = next(i for i, d in enumerate(deltas) if isinstance(d, AnswerDelta))
    assert all(isinstance(d, ReasoningDelta) for d in deltas[:first_answer])
    result = stream.result
    assert result is not None
    assert result.finish_reason == "stop"
    assert result.usage_source == "server"
    assert result.usage.prompt_tokens > 5
    assert result.usage.completion_tokens > 3
    assert result.timings_source == "server"
    assert result.timings.prompt_eval_s > 0
    assert result.timings.tokens_per_s > 0


def test_max_tokens_ends_as_length(engine: RemoteEngine) -> None:
    stream = engine.stream(TURNS, SamplingParams(grammar=LONG, max_tokens=3))
    list(stream)
    assert stream.result is not None
    assert stream.result.finish_reason == "length"


def test_cancel_mid_stream_stops_the_server(engine: RemoteEngine, server: LlamaServer) -> None:
    cancel = threading.Event()
    stream = engine.stream(TURNS, SamplingParams(grammar=LONG), cancel=cancel)
    for pieces, _ in enumerate(stream, start=1):
        if pieces == 2:
            cancel.set()
    assert stream.result is not None
    assert stream.result.finish_reason == "interrupted"
    deadline = time.monotonic() + 120
    while server.slots_busy():
        assert time.monotonic() < deadline, "the server kept generating after the stream closed"
        time.sleep(0.5)


def test_api_key_required(server: LlamaServer) -> None:
    settings = RemoteSettings(server.url, api_key_env="LAB_KEY")
    with pytest.raises(RemoteAuthError) as caught:
        RemoteEngine.connect(settings, model=None, policy=R1_POLICY)
    assert caught.value.exit_code == ExitCode.ERROR
    assert "set LAB_KEY" in str(caught.value)
    wrong = RemoteSettings(server.url, api_key="sk-not-it", api_key_env="LAB_KEY")
    with pytest.raises(RemoteAuthError) as refused:
        RemoteEngine.connect(wrong, model=None, policy=R1_POLICY)
    assert "sk-not-it" not in str(refused.value)


def test_unknown_model(server: LlamaServer) -> None:
    settings = RemoteSettings(server.url, api_key=KEY)
    with pytest.raises(RemoteModelNotFoundError) as caught:
        RemoteEngine.connect(settings, model="DeepSeek-R1-Distil-Test", policy=R1_POLICY)
    assert caught.value.exit_code == ExitCode.MODEL_NOT_FOUND
    assert f"did you mean '{ALIAS}'" in str(caught.value)


def test_prompt_over_the_context(engine: RemoteEngine) -> None:
    turns = [Turn("user", "word " * 5000)]
    with pytest.raises(RemoteContextOverflowError) as caught:
        engine.stream(turns, SamplingParams(max_tokens=1))
    assert caught.value.exit_code == ExitCode.CONTEXT_OVERFLOW
    assert "the server's context holds 4,096" in caught.value.message


# -- the CLI, as a user runs it ---------------------------------------------------------


def test_remote_add_run_continue_and_list_from_the_cli(
    server: LlamaServer, ponder_env: dict[str, str], ponder_home: Path, tmp_path: Path
) -> None:
    env = {**ponder_env, "LAB_KEY": KEY}
    added = ponder("remote", "add", "lab", server.url, "--api-key-env", "LAB_KEY", env=env)
    assert added.returncode == 0, added.stderr
    assert "lab: llama-server" in added.stderr and ALIAS in added.stderr
    listed = json.loads(ponder("remote", "list", "--json", env=env).stdout)
    assert [(r["name"], r["kind"], r["models"], r["reachable"]) for r in listed] == [
        ("lab", "llama-server", [ALIAS], True)
    ]
    grammar = tmp_path / "short.gbnf"
    grammar.write_text(SHORT, encoding="utf-8")
    ran = ponder("run", "lab:", "--grammar", grammar, "--json", "Is the sky blue?", env=env)
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    assert (doc["model"], doc["reasoning"], doc["answer"]) == (f"lab:{ALIAS}", "it is day", "Yes.")
    assert doc["finish_reason"] == "stop" and doc["timings_source"] == "server"
    assert doc["usage"]["completion_tokens"] > 3 and doc["usage_source"] == "server"
    # Text mode, continuing the chat from stdin: the answer on stdout, thinking on stderr.
    again = ponder(
        "run", f"lab:{ALIAS}", "-c", "--grammar", grammar, env=env, stdin=b"And at night?"
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout == "Yes.\n" and "it is day" in again.stderr
    shown = ponder("chats", "show", str(doc["chat_id"]), env=env)
    assert shown.stdout.count("Yes.") == 2 and "And at night?" in shown.stdout
    # The key is in no file Ponder wrote.
    for path in ponder_home.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    tested = json.loads(ponder("remote", "test", "lab", "--json", env=env).stdout)
    assert tested["kind"] == "llama-server" and tested["model"] == ALIAS
    assert tested["usage"]["prompt_tokens"] > 0 and tested["timings_source"] == "server"


def test_cli_errors_are_one_line_with_the_documented_codes(
    server: LlamaServer, ponder_env: dict[str, str]
) -> None:
    env = dict(ponder_env)  # no LAB_KEY set
    assert (
        ponder("remote", "add", "lab", server.url, "--api-key-env", "LAB_KEY", env=env).returncode
        == 0
    )
    assert_clean_error(ponder("run", "lab:", "hi", env=env), 1, "set LAB_KEY")
    env["LAB_KEY"] = KEY
    assert_clean_error(ponder("run", "lab:DeepSeek-R1", "hi", env=env), 3, "did you mean")
    assert_clean_error(ponder("run", "labs:x", "hi", env=env), 3, "no remote named 'labs'")
    assert_clean_error(ponder("remote", "add", "r1", server.url, env=env), 2, "model family")
    long_prompt = "word " * 5000
    assert_clean_error(ponder("run", "lab:", long_prompt, env=env), 5, "context")
    assert ponder("remote", "rm", "lab", env=env).returncode == 0
    assert ponder("remote", "list", "--json", env=env).stdout.strip() == "[]"


def test_wrap_up_on_the_real_server_goes_on_from_the_prefill(
    server: LlamaServer, ponder_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply is cut at its first reasoning piece and llama-server continues the
    assistant message that ends in </think>: the rest is answer, saved as one reply."""
    monkeypatch.setenv("LAB_KEY", KEY)
    session = open_session()
    session.remotes.add("lab", url=server.url, api_key_env="LAB_KEY")
    wrap_up = threading.Event()
    wrap_up.set()
    model = session.open_model("lab:")
    reply = model.reply(
        ReplyRequest(prompt="Is the sky blue?", overrides={"max_tokens": 12, "seed": 1}),
        wrap_up=wrap_up,
    )
    finished = reply.drain()
    assert reply.live.wrapped_up and reply.reasoning
    assert finished.finish_reason in ("stop", "length")
    saved = session.require_history().get_chat(reply.chat_id or 0).messages[-1]
    assert (saved.reasoning, saved.content) == (reply.reasoning, reply.answer)
    assert saved.status in ("complete", "length")
    session.close()


def test_think_budget_on_the_real_server_cuts_the_thinking_and_asks_for_the_answer(
    server: LlamaServer, ponder_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the budget the stream is closed and the server goes on from the thinking so
    far plus </think>: the reasoning holds the budget's worth of tokens, then the
    answer follows, all saved as one reply; budget 0 asks with the thinking closed."""
    monkeypatch.setenv("LAB_KEY", KEY)
    session = open_session()
    session.remotes.add("lab", url=server.url, api_key_env="LAB_KEY")
    model = session.open_model("lab:")
    overrides = {"max_tokens": 24, "seed": 1, "temperature": 0.0}
    reply = model.reply(
        ReplyRequest(prompt="Is the sky blue?", overrides=overrides, think_budget=6)
    )
    finished = reply.drain()
    assert finished.think_budget == 6 and finished.budget_hit
    assert reply.live.reasoning_tokens == 6 and reply.reasoning
    assert finished.finish_reason in ("stop", "length")
    saved = session.require_history().get_chat(reply.chat_id or 0).messages[-1]
    assert (saved.reasoning, saved.content) == (reply.reasoning, reply.answer)
    assert saved.params["think_budget"] == 6

    none = model.reply(ReplyRequest(prompt="Say hi.", overrides=overrides, think_budget=0))
    ended = none.drain()
    assert none.reasoning == "" and none.answer.strip()
    assert ended.think_budget == 0 and ended.budget_hit
    session.close()


def test_votes_on_the_real_server_send_one_request_per_candidate(
    server: LlamaServer, ponder_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three requests at once (the server queues what its one slot cannot take), each
    candidate streamed into its own row, the tally over what each one answered."""
    monkeypatch.setenv("LAB_KEY", KEY)
    session = open_session()
    session.remotes.add("lab", url=server.url, api_key_env="LAB_KEY")
    model = session.open_model("lab:")
    overrides = {"max_tokens": 16, "seed": 2, "temperature": 1.0}
    reply = model.reply(ReplyRequest(prompt="Pick a number.", overrides=overrides, votes=3))
    finished = reply.drain()
    voted = finished.votes
    assert voted is not None and voted.n == 3
    assert [c.index for c in voted.candidates] == [0, 1, 2]
    assert all(c.finished.finish_reason in ("stop", "length") for c in voted.candidates)
    answered = [c.extracted for c in voted.candidates if c.extracted is not None]
    assert sum(count for _, count in voted.tally) == len(answered)
    winner = voted.candidates[voted.winner_index]
    assert (reply.answer, reply.reasoning) == (winner.answer, winner.reasoning)
    history = session.require_history()
    message = history.get_chat(reply.chat_id or 0).messages[-1]
    rows = history.candidates(message.id)
    assert [(r.content, r.reasoning) for r in rows] == [
        (c.answer, c.reasoning) for c in voted.candidates
    ]
    session.close()
