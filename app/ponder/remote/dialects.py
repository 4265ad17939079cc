"""One chat-completion chunk, from whichever server, turned into Ponder's typed deltas.

The servers agree on the OpenAI chunk (``choices[0].delta.content``, ``finish_reason``, a
last ``usage`` chunk with ``choices: []`` when the request asks for
``stream_options.include_usage``) and disagree on where the thinking goes:

* vLLM with a reasoning parser sends ``delta.reasoning`` (from 0.19-era releases, 2026);
  older releases sent ``delta.reasoning_content``, and some sent both during the rename.
* SGLang (``--reasoning-parser``), llama-server (``--reasoning-format``) and LM Studio
  ("separate reasoning_content") send ``delta.reasoning_content``.
* Ollama's ``/v1`` sends ``delta.reasoning``.
* A server without a reasoning parser sends everything in ``content``: ``<think>…</think>``
  then the answer, or only ``…</think>answer`` when its template prefilled ``<think>``
  (the DeepSeek-R1 distills' current template does), or no tags at all.

So, per delta, the reasoning is the first non-empty of ``reasoning_content`` and
``reasoning``, never both (a server sending the same text twice must not show it twice).
Once a reply has brought either field, its ``content`` is answer. A reply that has brought
neither has its ``content`` go through Ponder's own :class:`ReasoningSplitter`, under the
model's prompt policy: an R1 reply starts inside thinking, as it does locally.

Whitespace follows the splitter's rules in both cases (leading whitespace of the reasoning
and of the answer dropped, trailing whitespace of the reasoning dropped), so a reply gives
the same split, the same ``--json`` and the same history rows, whichever way it came.

An ``error`` object in the stream (vLLM, SGLang and Ollama send one when generation fails
after the headers went out) becomes a :class:`RemoteStreamError` carrying the text that
had arrived.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ponder.events import AnswerDelta, ReasoningDelta
from ponder.reasoning import ReasoningSplitter
from ponder.remote.errors import RemoteStreamError

Delta = ReasoningDelta | AnswerDelta
REASONING_FIELDS = ("reasoning_content", "reasoning")


@dataclass(frozen=True, slots=True)
class ServerUsage:
    """Token counts from the usage chunk."""

    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int | None = None  # completion_tokens_details.reasoning_tokens
    cached_tokens: int | None = None  # prompt_tokens_details.cached_tokens


@dataclass(frozen=True, slots=True)
class ServerTimings:
    """llama-server's own ``timings`` object (milliseconds, as it sends them)."""

    prompt_n: int
    prompt_ms: float
    predicted_n: int
    predicted_ms: float


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one chunk says, the same for every server."""

    reasoning: str = ""
    content: str = ""
    finish_reason: str | None = None
    usage: ServerUsage | None = None
    timings: ServerTimings | None = None
    reasoning_field: str | None = None  # which delta field carried the reasoning


class ServerErrorObject(Exception):
    """An ``error`` object where a chunk was expected; ``message`` is the server's."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


def error_of(obj: object) -> ServerErrorObject | None:
    """The error an object reports, in any of the shapes the servers use, or None.

    ``{"error": {"message": ..., "type": ...}}`` (llama-server, SGLang, Ollama, vLLM),
    ``{"object": "error", "message": ...}`` (older vLLM), ``{"error": "text"}`` (proxies).
    """
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if isinstance(err, str) and err:
        return ServerErrorObject(err)
    if isinstance(err, dict):
        return ServerErrorObject(_text(err.get("message")) or "unknown error", _kind(err))
    if obj.get("object") == "error":
        return ServerErrorObject(_text(obj.get("message")) or "unknown error", _kind(obj))
    return None


def parse_chunk(obj: object) -> Chunk:
    """Read one decoded chunk; raise :class:`ServerErrorObject` for an error object."""
    err = error_of(obj)
    if err is not None:
        raise err
    if not isinstance(obj, dict):
        raise ServerErrorObject(f"a chunk that is not a JSON object: {str(obj)[:80]}")
    reasoning = content = ""
    finish = field = None
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict):
            field = next((f for f in REASONING_FIELDS if _text(delta.get(f))), None)
            reasoning = _text(delta.get(field)) if field else ""
            content = _text(delta.get("content"))
        finish = _text(choice.get("finish_reason")) or None
    return Chunk(
        reasoning,
        content,
        finish,
        _usage(obj.get("usage")),
        _timings(obj.get("timings")),
        field,
    )


class ReplyNormalizer:
    """Turns the chunks of one reply into deltas; also keeps the reply's text and counts."""

    def __init__(self, *, start_in_reasoning: bool) -> None:
        self._splitter: ReasoningSplitter | None = None
        self._start_in_reasoning = start_in_reasoning
        self.fields = False  # the reply brought a reasoning field
        self._reasoning_started = False
        self._pending_ws = ""
        self._answer_started = False
        self.reasoning: list[str] = []
        self.answer: list[str] = []
        self.reasoning_chunks = 0  # chunks that carried reasoning (a token count estimate)
        self.answer_chunks = 0
        self.finish_reason: str | None = None
        self.usage: ServerUsage | None = None
        self.timings: ServerTimings | None = None
        self.reasoning_field: str | None = None

    @property
    def reasoning_via(self) -> str:
        """Where this reply's reasoning arrived, for ``ponder remote test``."""
        if self.reasoning_field is not None:
            return f"delta.{self.reasoning_field}"
        if self.reasoning_chunks:
            return "content, split by Ponder at </think>"
        return "nowhere (no reasoning in this reply)"

    @property
    def text(self) -> tuple[str, str]:
        """``(reasoning, answer)`` released so far."""
        return "".join(self.reasoning), "".join(self.answer)

    def feed_data(self, data: str) -> list[Delta]:
        """Take one event's data (JSON text); a server's error becomes RemoteStreamError."""
        try:
            obj: Any = json.loads(data)
            chunk = parse_chunk(obj)
        except json.JSONDecodeError:
            raise self.failure(f"the server sent a chunk that is not JSON: {data[:80]!r}") from None
        except ServerErrorObject as exc:
            raise self.failure(f"the server failed mid-reply: {exc.message}") from None
        return self.feed(chunk)

    def feed(self, chunk: Chunk) -> list[Delta]:
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.timings is not None:
            self.timings = chunk.timings
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        out: list[Delta] = []
        if chunk.reasoning:
            self.reasoning_chunks += 1
            self.reasoning_field = self.reasoning_field or chunk.reasoning_field
            if not self.fields and self._splitter is not None:
                out += self._splitter.flush()  # content came first after all
            self.fields = True
            out += self._reasoning(chunk.reasoning)
        if chunk.content and self.fields:
            self.answer_chunks += 1
            out += self._answer(chunk.content)
        elif chunk.content:
            if self._splitter is None:
                self._splitter = ReasoningSplitter(start_in_reasoning=self._start_in_reasoning)
            if self._splitter.in_reasoning:
                self.reasoning_chunks += 1
            else:
                self.answer_chunks += 1
            out += self._splitter.feed(chunk.content)
        return self._keep(out)

    def flush(self) -> list[Delta]:
        """End of the reply: release what the splitter held back."""
        if self._splitter is None or self.fields:
            return []
        return self._keep(self._splitter.flush())

    def failure(self, message: str, hint: str | None = None) -> RemoteStreamError:
        """A :class:`RemoteStreamError` carrying the text that arrived before it."""
        reasoning, answer = self.text
        return RemoteStreamError(
            message, hint=hint, partial_reasoning=reasoning, partial_answer=answer
        )

    # -- the reasoning-field path: the splitter's whitespace rules, without tags --------

    def _reasoning(self, text: str) -> list[Delta]:
        if self._answer_started:
            return [ReasoningDelta(text)]  # out of order: keep it, as it came
        core = text.rstrip()
        trailing = text[len(core) :]
        if not self._reasoning_started:
            core = core.lstrip()
        if not core:
            if self._reasoning_started:
                self._pending_ws += trailing
            return []
        out = self._pending_ws + core
        self._pending_ws = trailing
        self._reasoning_started = True
        return [ReasoningDelta(out)]

    def _answer(self, text: str) -> list[Delta]:
        self._pending_ws = ""
        if not self._answer_started:
            text = text.lstrip()
            self._answer_started = bool(text)
        return [AnswerDelta(text)] if text else []

    def _keep(self, deltas: list[Delta]) -> list[Delta]:
        for delta in deltas:
            (self.reasoning if isinstance(delta, ReasoningDelta) else self.answer).append(
                delta.text
            )
        return deltas


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _kind(err: dict[str, Any]) -> str | None:
    kind = err.get("type")
    return kind if isinstance(kind, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(obj: object) -> ServerUsage | None:
    if not isinstance(obj, dict):
        return None
    prompt, completion = _int(obj.get("prompt_tokens")), _int(obj.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    details = obj.get("completion_tokens_details")
    prompt_details = obj.get("prompt_tokens_details")
    return ServerUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=_int(details.get("reasoning_tokens"))
        if isinstance(details, dict)
        else None,
        cached_tokens=(
            _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else None
        ),
    )


def _timings(obj: object) -> ServerTimings | None:
    if not isinstance(obj, dict):
        return None
    try:
        return ServerTimings(
            prompt_n=int(obj["prompt_n"]),
            prompt_ms=float(obj["prompt_ms"]),
            predicted_n=int(obj["predicted_n"]),
            predicted_ms=float(obj["predicted_ms"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
