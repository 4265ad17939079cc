"""Recorded chat-completion streams, one per server dialect, all saying the same R1 reply.

Each recording is the list of JSON chunks a server sends for one streamed reply, in the
shape that server uses. Every one must split into the same reasoning and answer
(``REASONING``, ``ANSWER``). Where each shape comes from is said beside it. The text is cut
into pieces the way a tokenizer would, with the whitespace an R1 distill writes around
``</think>``, so the whitespace rules are exercised too.

:func:`to_sse` turns a recording into the bytes on the wire, with the variations the servers
and proxies bring: CRLF line ends, ``: ping`` comments, no ``[DONE]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

REASONING = "Okay, 17*23 is 17*20 + 17*3 = 340 + 51 = 391. «Done»."
ANSWER = "17 × 23 = **391**. 🎉"
R_PIECES = [
    "\n",
    "Okay",
    ",",
    " 17*23 is",
    " 17*20 + 17*3",
    " = 340 + 51",
    " = 391.",
    " «Done».",
    "\n",
]
A_PIECES = ["\n\n", "17 ×", " 23 =", " **391**", ".", " 🎉"]

Chunk = dict[str, Any]


@dataclass(frozen=True)
class Recording:
    name: str
    kind: str  # the server kind the probe would report
    chunks: list[Chunk]
    start_in_reasoning: bool = True  # the R1 policy: the reply starts inside thinking
    expected: tuple[str, str] = (REASONING, ANSWER)


def _chunk(delta: Chunk, finish: str | None = None, **extra: Any) -> Chunk:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_750_000_000,
        "model": "deepseek-ai/DeepSeek-R1",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def _usage_chunk(prompt: int = 12, completion: int = 15, **extra: Any) -> Chunk:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_750_000_000,
        "model": "deepseek-ai/DeepSeek-R1",
        "choices": [],
        "usage": usage,
        **extra,
    }


def _fields(
    field: str | tuple[str, ...],
    *,
    first: Chunk,
    content_null: bool = False,
    finish_delta: Chunk | None = None,
) -> list[Chunk]:
    names = (field,) if isinstance(field, str) else field
    chunks = [_chunk(first)]
    for piece in R_PIECES:
        delta: Chunk = {name: piece for name in names}
        if content_null:
            delta["content"] = None
        chunks.append(_chunk(delta))
    chunks += [_chunk({"content": piece}) for piece in A_PIECES]
    chunks.append(_chunk(finish_delta if finish_delta is not None else {}, "stop"))
    return chunks


def _inline(text: str) -> list[Chunk]:
    """A server without a reasoning parser: everything in ``content``, cut like tokens."""
    pieces, rest = [], text
    while rest:  # cut every 5 characters: tags end up split across chunks
        pieces.append(rest[:5])
        rest = rest[5:]
    return (
        [_chunk({"role": "assistant", "content": ""})]
        + [_chunk({"content": p}) for p in pieces]
        + [_chunk({}, "stop"), _usage_chunk()]
    )


THINKING = "".join(R_PIECES)
REPLY = "".join(A_PIECES)

# llama-server's timings, as a real llama-server (xllamacpp 2026.10) sent them here.
TIMINGS = {
    "cache_n": 0,
    "prompt_n": 12,
    "prompt_ms": 240.0,
    "prompt_per_token_ms": 20.0,
    "prompt_per_second": 50.0,
    "predicted_n": 15,
    "predicted_ms": 500.0,
    "predicted_per_token_ms": 33.3,
    "predicted_per_second": 30.0,
}

RECORDINGS: list[Recording] = [
    # vLLM from 0.19-era (2026): `delta.reasoning` (docs.vllm.ai features/reasoning_outputs;
    # the rename is what litellm #22573 and strands-agents #2191 adapted to). The first chunk
    # is role + empty content; the last has finish_reason and an empty content.
    Recording(
        "vllm-reasoning",
        "vllm",
        [
            *_fields(
                "reasoning",
                first={"role": "assistant", "content": ""},
                finish_delta={"content": ""},
            ),
            _usage_chunk(),
        ],
    ),
    # vLLM before the rename: `delta.reasoning_content` (vLLM <= 0.8, same docs page then).
    Recording(
        "vllm-reasoning_content",
        "vllm",
        [
            *_fields("reasoning_content", first={"role": "assistant", "content": ""}),
            _usage_chunk(),
        ],
    ),
    # vLLM during the rename sent both fields with the same text: it must show once.
    Recording(
        "vllm-both-fields",
        "vllm",
        [
            *_fields(
                ("reasoning_content", "reasoning"), first={"role": "assistant", "content": ""}
            ),
            _usage_chunk(),
        ],
    ),
    # SGLang with --reasoning-parser deepseek-r1: `reasoning_content`, `content: null` beside
    # it (docs.sglang.ai advanced_features/separate_reasoning).
    Recording(
        "sglang",
        "sglang",
        [
            *_fields(
                "reasoning_content", first={"role": "assistant", "content": ""}, content_null=True
            ),
            _usage_chunk(),
        ],
    ),
    # llama-server with --reasoning-format deepseek: `reasoning_content`; first chunk
    # role + `content: null`, finish chunk with an empty delta, then the usage chunk with
    # `timings` (the shape recorded from a real llama-server here, tools/server/README.md).
    Recording(
        "llama-server",
        "llama-server",
        [
            *_fields("reasoning_content", first={"role": "assistant", "content": None}),
            _usage_chunk(timings=TIMINGS),
        ],
    ),
    # LM Studio (0.3.9+, "separate reasoning_content and content in API responses").
    Recording(
        "lmstudio",
        "lmstudio",
        [
            *_fields("reasoning_content", first={"role": "assistant", "content": ""}),
            _usage_chunk(),
        ],
    ),
    # Ollama's /v1 (docs.ollama.com api/openai-compatibility: reasoning; openai/openai.go's
    # Message has `Reasoning string json:"reasoning,omitempty"`): role on every chunk.
    Recording(
        "ollama",
        "ollama",
        [
            _chunk({"role": "assistant", "content": ""}),
            *[_chunk({"role": "assistant", "content": "", "reasoning": p}) for p in R_PIECES],
            *[_chunk({"role": "assistant", "content": p}) for p in A_PIECES],
            _chunk({"role": "assistant", "content": ""}, "stop"),
            _usage_chunk(),
        ],
    ),
    # No reasoning parser, the template did not prefill: both tags in `content`.
    Recording("inline-tags", "vllm", _inline("<think>" + THINKING + "</think>" + REPLY)),
    # No reasoning parser, the template prefilled "<think>\n" (the current R1 distill
    # template; llama-server's "Content-only" format, seen here): only "</think>" appears.
    Recording("only-close-tag", "llama-server", _inline(THINKING + "</think>" + REPLY)),
    # A model that does not think, under a policy that does not start inside thinking.
    Recording("no-tags", "openai", _inline(REPLY), start_in_reasoning=False, expected=("", ANSWER)),
]
BY_NAME = {r.name: r for r in RECORDINGS}


def to_sse(
    chunks: list[Chunk], *, crlf: bool = False, ping: bool = False, done: bool = True
) -> bytes:
    """The bytes a server sends for ``chunks``."""
    nl = "\r\n" if crlf else "\n"
    parts = [f": ping{nl}{nl}"] if ping else []
    for chunk in chunks:
        parts.append(f"data: {json.dumps(chunk, ensure_ascii=False)}{nl}{nl}")
        if ping:
            parts.append(f": ping{nl}")
    if done:
        parts.append(f"data: [DONE]{nl}{nl}")
    return "".join(parts).encode()
