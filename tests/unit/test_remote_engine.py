"""The remote engine against a loopback server replaying every dialect, and every fault."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import httpx2
import pytest

from ponder.catalog import PromptPolicy
from ponder.errors import ExitCode, UsageError
from ponder.events import AnswerDelta, ReasoningDelta
from ponder.prompt import R1_POLICY, Turn
from ponder.remote import (
    RemoteAuthError,
    RemoteClient,
    RemoteConnectError,
    RemoteContextOverflowError,
    RemoteEngine,
    RemoteHTTPError,
    RemoteModelNotFoundError,
    RemoteSettings,
    RemoteStreamError,
    RemoteTimeoutError,
    ServerInfo,
    probe,
)
from ponder.remote.probe import list_models
from ponder.sampling import SamplingParams
from support.fake_openai import FakeOpenAI, Reply, error_reply
from support.openai_streams import ANSWER, BY_NAME, REASONING, RECORDINGS, Recording, to_sse

KEY = "sk-test-0123456789abcdef"
TURNS = [Turn("system", "Be brief."), Turn("user", "What is 17*23?")]


@pytest.fixture()
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _settings(url: str, **kw: object) -> RemoteSettings:
    values: dict[str, object] = {"retry_backoff_s": 0.01, "timeout_s": 10.0, **kw}
    return RemoteSettings(url, **values)  # type: ignore[arg-type]


def _engine(fake: FakeOpenAI, policy: PromptPolicy = R1_POLICY, **kw: object) -> RemoteEngine:
    return RemoteEngine.connect(_settings(fake.url, **kw), model=None, policy=policy)


def _collect(stream: Iterator[ReasoningDelta | AnswerDelta]) -> tuple[str, str]:
    reasoning, answer = [], []
    for delta in stream:
        (reasoning if isinstance(delta, ReasoningDelta) else answer).append(delta.text)
    return "".join(reasoning), "".join(answer)


WIRES = {
    "whole": ({}, ()),
    "crlf-ping": ({"crlf": True, "ping": True}, ()),
    "7-byte-reads": ({}, (7,)),  # cuts events, and the multi-byte × « » 🎉
    "1-2-3-byte-reads": ({"crlf": True}, (1, 2, 3)),
    "no-done": ({"done": False}, (5,)),
}


@pytest.mark.parametrize("wire", list(WIRES))
@pytest.mark.parametrize("recording", RECORDINGS, ids=[r.name for r in RECORDINGS])
def test_every_dialect_over_http(recording: Recording, wire: str) -> None:
    options, pieces = WIRES[wire]
    body = to_sse(recording.chunks, **options)  # type: ignore[arg-type]
    with FakeOpenAI(kind=recording.kind) as fake:
        fake.queue(Reply(body, pieces=pieces))
        policy = R1_POLICY if recording.start_in_reasoning else PromptPolicy()
        engine = _engine(fake, policy)
        assert engine.info.kind == recording.kind
        stream = engine.stream(TURNS, SamplingParams())
        assert _collect(stream) == recording.expected
        engine.close()
    result = stream.result
    assert result is not None
    assert result.finish_reason == "stop"
    assert result.usage.prompt_tokens == 12
    assert result.usage.completion_tokens == 15
    assert result.usage_source == "server"
    assert result.timings_source == ("server" if recording.name == "llama-server" else "client")


def test_server_timings_are_used_where_sent(fake: FakeOpenAI) -> None:
    fake.queue(Reply(to_sse(BY_NAME["llama-server"].chunks)))
    stream = _engine(fake).stream(TURNS, SamplingParams())
    _collect(stream)
    assert stream.result is not None
    timings = stream.result.timings
    assert timings.prompt_eval_s == pytest.approx(0.24)
    assert timings.tokens_per_s == pytest.approx(30.0)
    assert timings.time_to_first_token_s is not None
    assert timings.thinking_s is not None
    assert stream.result.usage.reasoning_tokens == 9  # counted from the reasoning chunks
    assert stream.result.usage.answer_tokens == 6


def test_the_request(fake: FakeOpenAI) -> None:
    """R1: the system prompt folded in; the model's sampling; usage asked for."""
    fake.queue(Reply(to_sse(RECORDINGS[0].chunks)))
    engine = _engine(fake)
    sampling = SamplingParams(seed=7, max_tokens=100, top_k=40, repeat_penalty=1.1)
    _collect(engine.stream(TURNS, sampling))
    body = fake.completions()[0].body
    assert body["model"] == "deepseek-ai/DeepSeek-R1"
    assert body["messages"] == [{"role": "user", "content": "Be brief.\n\nWhat is 17*23?"}]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"]) == (0.6, 0.95)
    assert (body["seed"], body["max_tokens"], body["top_k"]) == (7, 100, 40)
    assert body["repetition_penalty"] == 1.1  # vLLM's name for it
    assert "min_p" not in body  # off: not sent
    assert "grammar" not in body


@pytest.mark.parametrize(
    ("kind", "present", "absent"),
    [
        ("llama-server", {"top_k", "repeat_penalty"}, {"repetition_penalty"}),
        ("sglang", {"top_k", "repetition_penalty"}, {"repeat_penalty"}),
        ("ollama", set(), {"top_k", "repeat_penalty", "repetition_penalty", "min_p"}),
        ("openai", set(), {"top_k", "repeat_penalty", "repetition_penalty", "min_p"}),
    ],
)
def test_sampling_names_per_server(kind: str, present: set[str], absent: set[str]) -> None:
    with FakeOpenAI(kind=kind) as fake:
        engine = _engine(fake)
        body = engine.request_body(TURNS, SamplingParams(top_k=20, min_p=0.05, repeat_penalty=1.2))
        engine.close()
    assert present <= body.keys()
    assert not absent & body.keys()


@pytest.mark.parametrize(
    ("kind", "version", "field"),
    [
        ("llama-server", None, {"grammar": 'root ::= "yes"'}),
        ("sglang", "0.5.3", {"ebnf": 'root ::= "yes"'}),
        ("vllm", "0.19.1", {"structured_outputs": {"grammar": 'root ::= "yes"'}}),
        ("vllm", "0.10.2rc1", {"guided_grammar": 'root ::= "yes"'}),
        ("vllm", None, {"structured_outputs": {"grammar": 'root ::= "yes"'}}),
    ],
)
def test_a_grammar_goes_where_each_server_takes_it(
    kind: str, version: str | None, field: dict[str, object]
) -> None:
    grammar = 'root ::= "yes"'
    with FakeOpenAI(kind=kind) as fake:
        engine = _engine(fake)
        engine.info = ServerInfo(kind=engine.info.kind, version=version, models=engine.info.models)
        body = engine.request_body(TURNS, SamplingParams(grammar=grammar))
        assert {k: body[k] for k in field} == field
        others = {"grammar", "ebnf", "guided_grammar", "structured_outputs"} - field.keys()
        assert not others & body.keys()


@pytest.mark.parametrize("kind", ["ollama", "lmstudio", "openai"])
def test_a_grammar_is_refused_where_no_server_field_takes_it(kind: str) -> None:
    with FakeOpenAI(kind=kind) as fake:
        engine = _engine(fake)
        with pytest.raises(UsageError, match="grammar") as caught:
            engine.stream(TURNS, SamplingParams(grammar='root ::= "yes"'))
        assert caught.value.exit_code == ExitCode.USAGE
        assert fake.completions() == []  # refused before anything was sent


@pytest.mark.parametrize("kind", ["llama-server", "sglang", "vllm", "ollama", "lmstudio", "openai"])
def test_probe(kind: str) -> None:
    with FakeOpenAI(kind=kind, models=["a/b", "c"]) as fake:
        client = RemoteClient(_settings(fake.url))
        info = probe(client)
        client.close()
    assert info.kind == kind
    assert info.models == ("a/b", "c")
    expected = {
        "llama-server": "b6500-abc",
        "sglang": "0.5.3",
        "vllm": "0.19.1",
        "ollama": "0.12.6",
    }.get(kind)
    assert info.version == expected
    if kind == "llama-server":
        assert info.n_ctx == 4096


# -- faults -------------------------------------------------------------------------------


def test_error_object_mid_stream_keeps_the_partial(fake: FakeOpenAI) -> None:
    chunks = RECORDINGS[0].chunks
    error = {"error": {"message": "Engine core died", "type": "InternalServerError", "code": 500}}
    fake.queue(Reply(to_sse([*chunks[:12], error]), pieces=(9,)))
    stream = _engine(fake).stream(TURNS, SamplingParams())
    with pytest.raises(RemoteStreamError, match="Engine core died") as caught:
        _collect(stream)
    assert caught.value.partial_reasoning == REASONING
    assert caught.value.partial_answer == "17 ×"
    assert caught.value.exit_code == ExitCode.ERROR


def test_a_stream_cut_before_the_end_is_an_error(fake: FakeOpenAI) -> None:
    fake.queue(Reply(to_sse(RECORDINGS[0].chunks[:6], done=False)))
    with pytest.raises(RemoteStreamError, match="closed the stream") as caught:
        _collect(_engine(fake).stream(TURNS, SamplingParams()))
    assert caught.value.partial_reasoning.startswith("Okay")
    assert caught.value.started


def test_api_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI(api_key=KEY) as fake:
        with pytest.raises(RemoteAuthError) as caught:
            _engine(fake, api_key_env="LAB_KEY")
        assert caught.value.exit_code == ExitCode.ERROR
        assert "LAB_KEY" in str(caught.value)
        assert "needs an API key" in caught.value.message
        with pytest.raises(RemoteAuthError) as wrong:
            _engine(fake, api_key="sk-wrong-key", api_key_env="LAB_KEY")
        assert "refused the API key" in wrong.value.message
        assert "sk-wrong-key" not in str(wrong.value)
        fake.queue(Reply(to_sse(RECORDINGS[0].chunks)))
        settings = _settings(fake.url, api_key=KEY, api_key_env="LAB_KEY")
        engine = RemoteEngine.connect(settings, model=None, policy=R1_POLICY)
        assert _collect(engine.stream(TURNS, SamplingParams())) == (REASONING, ANSWER)
        assert fake.completions()[-1].headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(settings)
    assert KEY not in caplog.text


def test_503_loading_then_200_is_retried(fake: FakeOpenAI) -> None:
    loading = error_reply(503, "Loading model", "unavailable_error")
    fake.queue(
        loading,
        Reply(b"", status=429, headers={"Retry-After": "0"}),
        Reply(to_sse(RECORDINGS[0].chunks)),
    )
    assert _collect(_engine(fake).stream(TURNS, SamplingParams())) == (REASONING, ANSWER)
    assert len(fake.completions()) == 3


def test_retries_are_bounded(fake: FakeOpenAI) -> None:
    fake.queue(*[error_reply(503, "Loading model", "unavailable_error")] * 10)
    with pytest.raises(RemoteHTTPError, match="Loading model") as caught:
        _engine(fake, retries=2).stream(TURNS, SamplingParams())
    assert caught.value.status == 503
    assert len(fake.completions()) == 3


def test_no_retry_once_the_server_took_the_request(fake: FakeOpenAI) -> None:
    fake.queue(error_reply(500, "boom", "server_error"))
    with pytest.raises(RemoteHTTPError, match="boom"):
        _engine(fake).stream(TURNS, SamplingParams())
    assert len(fake.completions()) == 1


def test_connection_refused_names_the_url() -> None:
    with FakeOpenAI() as fake:
        url = fake.url  # the port is closed once the server stops
    with pytest.raises(RemoteConnectError, match="connection refused") as caught:
        RemoteEngine.connect(_settings(url, retries=1), model=None, policy=R1_POLICY)
    assert url in caught.value.message
    assert caught.value.exit_code == ExitCode.ERROR


def test_dns_failure_and_credentials_in_the_url() -> None:
    def fail(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("[Errno -2] Name or service not known", request=request)

    settings = _settings("http://user:secret@gpu-box.invalid:8000/v1", retries=1)
    client = RemoteClient(settings, transport=httpx2.MockTransport(fail))
    with pytest.raises(RemoteConnectError, match="does not resolve") as caught:
        RemoteEngine.connect(settings, model=None, policy=R1_POLICY, client=client)
    assert "http://gpu-box.invalid:8000/v1" in caught.value.message
    assert "secret" not in str(caught.value)


def test_a_server_that_never_answers_times_out(fake: FakeOpenAI) -> None:
    fake.queue(Reply(stall_s=30))
    engine = _engine(fake, timeout_s=0.5)
    with pytest.raises(RemoteTimeoutError, match=r"longer than 0\.5s"):
        engine.stream(TURNS, SamplingParams())


def test_a_stall_mid_stream_times_out_with_the_partial(fake: FakeOpenAI) -> None:
    body = to_sse(RECORDINGS[0].chunks)
    fake.queue(Reply(body, pieces=(200,), stall_after=1500, stall_s=30))
    stream = _engine(fake, timeout_s=0.5).stream(TURNS, SamplingParams())
    with pytest.raises(RemoteTimeoutError) as caught:
        _collect(stream)
    assert caught.value.partial_reasoning.startswith("Okay")


def test_unknown_model_from_the_list() -> None:
    with FakeOpenAI(models=["deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-R1-0528"]) as fake:
        with pytest.raises(RemoteModelNotFoundError) as caught:
            RemoteEngine.connect(
                _settings(fake.url), model="deepseek-ai/DeepSeek-R2", policy=R1_POLICY
            )
        assert caught.value.exit_code == ExitCode.MODEL_NOT_FOUND
        assert "did you mean 'deepseek-ai/DeepSeek-R1'" in str(caught.value)
        with pytest.raises(RemoteModelNotFoundError, match="serves 2 models"):
            RemoteEngine.connect(_settings(fake.url), model=None, policy=R1_POLICY)
        assert fake.completions() == []


def test_unknown_model_refused_by_the_server(fake: FakeOpenAI) -> None:
    """vLLM's 404 when the model is not listed at probe time (a remembered probe)."""
    fake.queue(error_reply(404, "The model `deepseek-r1` does not exist.", "NotFoundError"))
    info = ServerInfo(kind="vllm", models=())
    engine = RemoteEngine.connect(
        _settings(fake.url), model="deepseek-r1", policy=R1_POLICY, info=info
    )
    with pytest.raises(RemoteModelNotFoundError, match="deepseek-r1") as caught:
        engine.stream(TURNS, SamplingParams())
    assert "did you mean 'deepseek-ai/DeepSeek-R1'" in str(caught.value)


@pytest.mark.parametrize(
    ("reply", "numbers"),
    [
        # llama-server (seen here from a real one)
        (
            error_reply(
                400,
                "request (1211 tokens) exceeds the available context size (1024 "
                "tokens), try increasing it",
                "exceed_context_size_error",
                n_prompt_tokens=1211,
                n_ctx=1024,
            ),
            "1,211 tokens but the server's context holds 1,024",
        ),
        # vLLM
        (
            error_reply(
                400,
                "This model's maximum context length is 4096 tokens. However, you "
                "requested 5000 tokens (4000 in the messages, 1000 in the completion).",
                "BadRequestError",
            ),
            "5,000 tokens but the server's context holds 4,096",
        ),
        # SGLang
        (
            error_reply(
                400,
                "The input (5000 tokens) is longer than the model's context length (4096 tokens).",
                "BadRequestError",
            ),
            "5,000 tokens",
        ),
    ],
)
def test_prompt_over_the_context(fake: FakeOpenAI, reply: Reply, numbers: str) -> None:
    fake.queue(reply)
    with pytest.raises(RemoteContextOverflowError) as caught:
        _engine(fake).stream(TURNS, SamplingParams())
    assert caught.value.exit_code == ExitCode.CONTEXT_OVERFLOW
    assert numbers in caught.value.message


def test_cancel_closes_the_stream(fake: FakeOpenAI) -> None:
    chunks = RECORDINGS[0].chunks
    long = [chunks[0], *[chunks[1]] * 1, *([chunks[2]] * 400)]
    fake.queue(Reply(to_sse(long), pieces=(300,), pause_s=0.02))
    cancel = threading.Event()
    stream = _engine(fake).stream(TURNS, SamplingParams(), cancel=cancel)
    n = 0
    for _ in stream:
        n += 1
        if n == 3:
            cancel.set()
    assert stream.result is not None
    assert stream.result.finish_reason == "interrupted"
    assert n == 3
    assert fake.client_gone.wait(10), "the server kept writing to a closed stream"


def test_error_bodies_that_are_not_json(fake: FakeOpenAI) -> None:
    fake.queue(Reply(b"<html>Bad Gateway</html>", status=502, content_type="text/html"))
    with pytest.raises(RemoteHTTPError, match="Bad Gateway") as caught:
        _engine(fake, retries=0).stream(TURNS, SamplingParams())
    assert caught.value.status == 502


def test_recordings_are_json_lines() -> None:
    """Guard for the recordings themselves: every data line parses."""
    for recording in RECORDINGS:
        for line in to_sse(recording.chunks).decode().splitlines():
            if line.startswith("data: {"):
                json.loads(line[6:])


def test_model_list_with_aliases() -> None:
    """llama-server lists --alias as the id and again under `aliases`: once is enough."""
    listing = {"data": [{"id": "r1", "aliases": ["r1", "deepseek"]}, {"id": "qwq"}, "junk"]}

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=listing)

    client = RemoteClient(_settings("http://x/v1"), transport=httpx2.MockTransport(answer))
    assert list_models(client) == ("r1", "qwq", "deepseek")
