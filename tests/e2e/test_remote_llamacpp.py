"""The remote engine against a real llama.cpp server (xllamacpp), serving the R1-templated Gemma.

The server runs in its own process on 127.0.0.1 (tests/support/llama_server.py) with an API
key. Its old-style R1 template does not prefill ``<think>`` and llama-server then streams
everything as ``content`` ("Content-only" format, as seen here), so the reasoning split is
Ponder's splitter on real tokens; a grammar makes the 270M base model write an R1 reply.
Replies are kept a few tokens long: the shared machines decode at about a token a second.
"""

from __future__ import annotations

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
from support.llama_server import LlamaServer

pytestmark = pytest.mark.real_model

KEY = "sk-e2e-remote-key"
ALIAS = "DeepSeek-R1-Distill-Test"
TURNS = [Turn("system", "Answer briefly."), Turn("user", "Is the sky blue?")]
SHORT = 'root ::= "<think>" "it is day" "</think>" " Yes."\n'
LONG = 'root ::= "<think>" [a-z ]{300,400} "</think>" "done."\n'


@pytest.fixture(scope="module")
def server(r1_gemma: Path) -> Iterator[LlamaServer]:
    llama = LlamaServer(r1_gemma, alias=ALIAS, api_key=KEY, n_ctx=4096)
    llama.start()
    try:
        yield llama
    finally:
        llama.stop()


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
