"""Chunks from every server dialect give the same reasoning/answer split as a local run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ponder.events import AnswerDelta, ReasoningDelta
from ponder.reasoning import split_reasoning
from ponder.remote.dialects import (
    Chunk,
    ReplyNormalizer,
    ServerErrorObject,
    ServerTimings,
    ServerUsage,
    error_of,
    parse_chunk,
)
from ponder.remote.errors import RemoteStreamError
from support.openai_streams import RECORDINGS, Recording


def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


PARSE_CASES: list[tuple[str, object, Chunk]] = [
    ("content", _choice({"content": "hi"}), Chunk(content="hi")),
    ("content null", _choice({"role": "assistant", "content": None}), Chunk()),
    (
        "reasoning_content",
        _choice({"reasoning_content": "r"}),
        Chunk(reasoning="r", reasoning_field="reasoning_content"),
    ),
    ("reasoning", _choice({"reasoning": "r"}), Chunk(reasoning="r", reasoning_field="reasoning")),
    (
        "both: reasoning_content wins, once",
        _choice({"reasoning_content": "a", "reasoning": "a"}),
        Chunk(reasoning="a", reasoning_field="reasoning_content"),
    ),
    (
        "both, reasoning_content empty",
        _choice({"reasoning_content": "", "reasoning": "b"}),
        Chunk(reasoning="b", reasoning_field="reasoning"),
    ),
    (
        "both, reasoning_content null",
        _choice({"reasoning_content": None, "reasoning": "b"}),
        Chunk(reasoning="b", reasoning_field="reasoning"),
    ),
    (
        "reasoning and content in one delta",
        _choice({"reasoning": "r", "content": "c"}),
        Chunk(reasoning="r", content="c", reasoning_field="reasoning"),
    ),
    ("a non-string reasoning is ignored", _choice({"reasoning": {"effort": "high"}}), Chunk()),
    ("finish_reason", _choice({}, "length"), Chunk(finish_reason="length")),
    (
        "usage chunk",
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
        Chunk(usage=ServerUsage(3, 4)),
    ),
    (
        "usage details",
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 3,
                "completion_tokens": 4,
                "completion_tokens_details": {"reasoning_tokens": 2},
                "prompt_tokens_details": {"cached_tokens": 1},
            },
        },
        Chunk(usage=ServerUsage(3, 4, reasoning_tokens=2, cached_tokens=1)),
    ),
    ("usage without counts is ignored", {"choices": [], "usage": {"total_tokens": 5}}, Chunk()),
    (
        "llama-server timings",
        {
            "choices": [],
            "timings": {
                "prompt_n": 5,
                "prompt_ms": 10.5,
                "predicted_n": 7,
                "predicted_ms": 70.0,
                "predicted_per_second": 100.0,
            },
        },
        Chunk(timings=ServerTimings(5, 10.5, 7, 70.0)),
    ),
    ("partial timings are ignored", {"choices": [], "timings": {"prompt_n": 5}}, Chunk()),
    ("no choices key", {"object": "chat.completion.chunk"}, Chunk()),
]


@pytest.mark.parametrize(
    ("obj", "expected"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES]
)
def test_parse_chunk(obj: object, expected: Chunk) -> None:
    assert parse_chunk(obj) == expected


ERROR_CASES: list[tuple[str, object, str | None]] = [
    # llama-server, SGLang, Ollama, newer vLLM: an `error` object.
    ("error object", {"error": {"message": "boom", "type": "server_error", "code": 500}}, "boom"),
    # Older vLLM's ErrorResponse at the top level.
    ("object: error", {"object": "error", "message": "bad", "type": "BadRequestError"}, "bad"),
    ("error string", {"error": "model not loaded"}, "model not loaded"),
    ("error without message", {"error": {"code": 500}}, "unknown error"),
    ("not an error", _choice({"content": "x"}), None),
    ("error: null", {"error": None, **_choice({"content": "x"})}, None),
]


@pytest.mark.parametrize(
    ("obj", "message"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_error_objects(obj: object, message: str | None) -> None:
    err = error_of(obj)
    assert (err.message if err else None) == message
    if message is not None:
        with pytest.raises(ServerErrorObject):
            parse_chunk(obj)


def _run(recording: Recording) -> tuple[str, str, ReplyNormalizer]:
    norm = ReplyNormalizer(start_in_reasoning=recording.start_in_reasoning)
    deltas = []
    for chunk in recording.chunks:
        deltas += norm.feed_data(json.dumps(chunk))
    deltas += norm.flush()
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    answer = "".join(d.text for d in deltas if isinstance(d, AnswerDelta))
    assert all(d.text for d in deltas), "no empty deltas"
    return reasoning, answer, norm


@pytest.mark.parametrize("recording", RECORDINGS, ids=[r.name for r in RECORDINGS])
def test_every_dialect_splits_the_same(recording: Recording) -> None:
    reasoning, answer, norm = _run(recording)
    assert (reasoning, answer) == recording.expected
    assert norm.text == recording.expected
    assert norm.finish_reason == "stop"
    assert norm.usage is not None


def test_the_split_matches_a_local_run() -> None:
    """What a local R1 run would make of the same tokens (the splitter on the raw text)."""
    from support.openai_streams import REPLY, THINKING

    assert split_reasoning(THINKING + "</think>" + REPLY, start_in_reasoning=True) == (
        RECORDINGS[0].expected
    )


def test_reasoning_deltas_come_before_the_answer_and_stream() -> None:
    """Reasoning streams piece by piece (not held to the end), then the answer."""
    norm = ReplyNormalizer(start_in_reasoning=True)
    assert norm.feed(Chunk(reasoning="\n")) == []
    assert norm.feed(Chunk(reasoning="Think")) == [ReasoningDelta("Think")]
    assert norm.feed(Chunk(reasoning=" more\n")) == [ReasoningDelta(" more")]
    assert norm.feed(Chunk(reasoning=" ")) == []
    assert norm.feed(Chunk(reasoning="again")) == [ReasoningDelta("\n again")]
    assert norm.feed(Chunk(reasoning="\n\n")) == []
    assert norm.feed(Chunk(content="\n\n")) == []
    assert norm.feed(Chunk(content="Yes")) == [AnswerDelta("Yes")]
    assert norm.feed(Chunk(content=" ")) == [AnswerDelta(" ")]
    assert norm.flush() == []
    assert norm.text == ("Think more\n again", "Yes ")


def test_no_reasoning_field_and_no_tags_under_r1_stays_reasoning() -> None:
    """As locally: an R1 reply that never closes its thinking is all reasoning."""
    norm = ReplyNormalizer(start_in_reasoning=True)
    norm.feed(Chunk(content="still thinking"))
    norm.flush()
    assert norm.text == ("still thinking", "")


def test_a_reasoning_field_after_content_flushes_the_splitter_first() -> None:
    norm = ReplyNormalizer(start_in_reasoning=False)
    out = norm.feed(Chunk(content="<thi"))  # held: it may become "<think>"
    assert out == []
    out = norm.feed(Chunk(reasoning="r"))
    assert out == [AnswerDelta("<thi"), ReasoningDelta("r")]
    assert norm.fields


def test_counts_per_phase() -> None:
    _, _, norm = _run(RECORDINGS[0])
    assert norm.reasoning_chunks == 9  # the R_PIECES
    assert norm.answer_chunks == 6


@pytest.mark.parametrize("where", [0, 3, 12])
def test_an_error_mid_stream_keeps_what_arrived(where: int) -> None:
    recording = RECORDINGS[0]
    norm = ReplyNormalizer(start_in_reasoning=True)
    for chunk in recording.chunks[:where]:
        norm.feed_data(json.dumps(chunk))
    error = {"error": {"message": "CUDA out of memory", "type": "InternalServerError"}}
    with pytest.raises(RemoteStreamError) as caught:
        norm.feed_data(json.dumps(error))
    assert "CUDA out of memory" in caught.value.message
    assert (caught.value.partial_reasoning, caught.value.partial_answer) == norm.text
    assert caught.value.started == (where > 1)


def test_a_chunk_that_is_not_json() -> None:
    norm = ReplyNormalizer(start_in_reasoning=True)
    norm.feed(Chunk(reasoning="so far"))
    with pytest.raises(RemoteStreamError, match="not JSON") as caught:
        norm.feed_data("{oops")
    assert caught.value.partial_reasoning == "so far"
