"""A model on a remote OpenAI-compatible server, streamed as Ponder's typed deltas.

The local engine works in tokens: the session renders the prompt, tokenizes it and gets
text back token by token. A server takes messages and renders the prompt itself with the
model's own template, so :class:`RemoteEngine` works in messages:
``stream(turns, sampling, cancel=...)`` yields :class:`ReasoningDelta` and
:class:`AnswerDelta` and, once it ends, has a :class:`RemoteResult` with the finish reason,
the usage and the timings.

What it keeps the same as a local run:

* **The prompt policy.** Messages go through :func:`ponder.prompt.apply_policy`: for R1 the
  system prompt is folded into the first user turn and earlier replies go back without
  their reasoning. The reply is read as starting inside thinking when the policy prefills
  ``<think>`` (the server's template does the prefilling).
* **The sampling.** The model's recommended values are always sent (Ollama's ``/v1`` would
  otherwise sample at 1.0/1.0), the options a server does not take are left out, and an
  option that is off (``top_k`` 0, ``min_p`` 0, repeat penalty 1) is not sent, since the
  servers disagree on how to say "off". A grammar goes to llama-server, vLLM and SGLang,
  each in its own field; other servers get a clear refusal rather than a silently
  unconstrained reply.
* **Checks before anything is recorded.** :meth:`RemoteEngine.stream` returns only once
  the server has accepted the request (a 200), so a wrong key, an unknown model or an
  over-long prompt raises before the caller creates any history row, as the local engine
  checks the context before it generates.
* **Cancel** is checked after every event; setting it closes the connection, which makes
  llama-server, vLLM and SGLang stop generating, and the reply ends ``interrupted``.

Timings are the server's where it sends them (llama-server's ``timings``: prompt evaluation
and decode speed), else this client's clock; :attr:`RemoteResult.timings_source` says which.
"""

from __future__ import annotations

import difflib
import itertools
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ponder.catalog import PromptPolicy
from ponder.errors import UsageError
from ponder.events import AnswerDelta, FinishReason, ReasoningDelta, Timings, Usage
from ponder.prompt import Turn, apply_policy
from ponder.remote.client import RemoteClient, RemoteSettings
from ponder.remote.dialects import ReplyNormalizer
from ponder.remote.errors import RemoteError, RemoteHTTPError, RemoteModelNotFoundError
from ponder.remote.probe import ServerInfo, ServerKind, list_models, probe
from ponder.sampling import SamplingParams

Delta = ReasoningDelta | AnswerDelta

# Which of Ponder's sampler options each kind takes, and under which name.
_EXTRAS: dict[ServerKind, dict[str, str]] = {
    "llama-server": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty"},
    "lmstudio": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty"},
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"},
    "sglang": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"},
    "ollama": {},
    "openai": {},
}
_OFF: dict[str, float] = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
_IGNORE_EOS: frozenset[ServerKind] = frozenset({"llama-server", "vllm", "sglang"})
_GRAMMAR: frozenset[ServerKind] = frozenset({"llama-server", "vllm", "sglang"})
_CONTINUE_FLAG: frozenset[ServerKind] = frozenset({"vllm", "sglang"})
_FINISH: dict[str, FinishReason] = {"length": "length", "abort": "interrupted"}


@dataclass(frozen=True, slots=True)
class RemoteResult:
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    timings_source: Literal["server", "client"]
    usage_source: Literal["server", "client"]  # client: counted from the chunks
    server_finish_reason: str | None = None
    reasoning_via: str = ""  # which field (or the content's tags) carried the reasoning


class RemoteEngine:
    """One model on one server."""

    def __init__(
        self, client: RemoteClient, *, model: str, info: ServerInfo, policy: PromptPolicy
    ) -> None:
        self.client = client
        self.model = model
        self.info = info
        self.policy = policy

    @classmethod
    def connect(
        cls,
        settings: RemoteSettings,
        *,
        model: str | None,
        policy: PromptPolicy,
        info: ServerInfo | None = None,
        client: RemoteClient | None = None,
    ) -> RemoteEngine:
        """Probe the server (unless ``info`` is remembered) and settle the model name.

        ``model`` None means the server's only model. A model the server does not list is
        refused here (exit 3, with a "did you mean"): llama-server would accept any name.
        """
        client = client or RemoteClient(settings)
        try:
            info = info or probe(client)
            return cls(client, model=resolve_model(model, info, client), info=info, policy=policy)
        except BaseException:
            client.close()
            raise

    def close(self) -> None:
        self.client.close()

    def request_body(
        self,
        turns: Sequence[Turn],
        sampling: SamplingParams,
        *,
        prefill: str | None = None,
        keep_reasoning: bool = False,
    ) -> dict[str, Any]:
        """The JSON body of the chat-completion request for ``turns``.

        ``prefill`` is the start of the assistant's reply, which the server must go on
        from rather than begin a new turn (wrap up: the reasoning so far and
        ``</think>``). llama-server continues a last assistant message by itself; vLLM
        and SGLang are told with ``continue_final_message``. ``keep_reasoning`` sends
        earlier replies with their thinking even where the policy would strip it.
        """
        kind = self.info.kind
        if sampling.grammar and kind not in _GRAMMAR:
            raise UsageError(
                f"a grammar cannot be sent to {self.client.display_url} ({kind}): "
                "Ponder forwards --grammar only to llama-server, vLLM and SGLang",
                hint="drop --grammar, or serve the model with one of those",
            )
        policy = self.policy
        if keep_reasoning:
            policy = policy.model_copy(update={"strip_reasoning_in_history": False})
        messages = [{"role": t.role, "content": t.content} for t in apply_policy(turns, policy)]
        if prefill is not None:
            messages.append({"role": "assistant", "content": prefill})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        for name, wire in _EXTRAS[kind].items():
            value = getattr(sampling, name)
            if value != _OFF[name]:
                body[wire] = value
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.max_tokens is not None:
            body["max_tokens"] = sampling.max_tokens
        if sampling.grammar:
            body.update(_grammar_field(self.info, sampling.grammar))
        if sampling.ignore_eos and kind in _IGNORE_EOS:
            body["ignore_eos"] = True
        if prefill is not None and kind in _CONTINUE_FLAG:
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        return body

    def stream(
        self,
        turns: Sequence[Turn],
        sampling: SamplingParams,
        *,
        cancel: threading.Event | None = None,
        prefill: str | None = None,
        keep_reasoning: bool = False,
    ) -> RemoteStream:
        """Send the request; return the reply's deltas once the server has accepted it.

        With ``prefill`` (see :meth:`request_body`) the reply goes on from there; a prefill
        closes the thinking, so what comes is read as answer.
        """
        body = self.request_body(turns, sampling, prefill=prefill, keep_reasoning=keep_reasoning)
        started = time.monotonic()
        try:
            response = self.client.open_stream("/chat/completions", body)
        except RemoteHTTPError as exc:
            if exc.status in (400, 404) and _names_missing_model(exc.message):
                raise self._unknown_model(list_models(self.client)) from None
            raise
        normalizer = ReplyNormalizer(
            start_in_reasoning=bool(self.policy.think_prefill) and prefill is None
        )
        return RemoteStream(self.client, response, normalizer, started, cancel)

    def _unknown_model(self, known: Sequence[str]) -> RemoteModelNotFoundError:
        return unknown_model_error(self.model, known, self.client.display_url)


class RemoteStream(Iterator[Delta]):
    """The deltas of one reply; :attr:`result` is set once they are exhausted."""

    def __init__(
        self,
        client: RemoteClient,
        response: Any,
        normalizer: ReplyNormalizer,
        started: float,
        cancel: threading.Event | None,
    ) -> None:
        self.result: RemoteResult | None = None
        self._client = client
        self._response = response
        self._norm = normalizer
        self._started = started
        self._cancel = cancel
        self._first_at: float | None = None
        self._reasoning_at: float | None = None
        self._answer_at: float | None = None
        self._deltas = self._run()

    def __next__(self) -> Delta:
        return next(self._deltas)

    def close(self) -> None:
        """Stop reading and drop the connection (the server stops generating)."""
        self._deltas.close()
        self._response.close()
        if self.result is None:
            self.result = self._result("interrupted")

    def _run(self) -> Generator[Delta, None, None]:
        norm = self._norm
        finish: FinishReason | None = None
        try:
            for event in self._client.events(self._response):
                if self._cancel is not None and self._cancel.is_set():
                    finish = "interrupted"
                    break
                if event.is_done:
                    break
                for delta in norm.feed_data(event.data):
                    self._mark(delta)
                    yield delta
                if self._cancel is not None and self._cancel.is_set():
                    finish = "interrupted"
                    break
            else:
                if norm.finish_reason is None:
                    raise norm.failure(
                        f"{self._client.display_url} closed the stream before the reply finished",
                        hint="the server may have stopped or restarted; check its log",
                    )
            for delta in norm.flush():
                self._mark(delta)
                yield delta
        except RemoteError as exc:
            if not exc.started:
                exc.partial_reasoning, exc.partial_answer = norm.text
            raise
        finally:
            self._response.close()
        self.result = self._result(finish)

    def _mark(self, delta: Delta) -> None:
        now = time.monotonic()
        self._first_at = self._first_at or now
        if isinstance(delta, ReasoningDelta):
            self._reasoning_at = self._reasoning_at or now
        else:
            self._answer_at = self._answer_at or now

    def _result(self, finish: FinishReason | None) -> RemoteResult:
        norm = self._norm
        end = time.monotonic()
        server_finish = norm.finish_reason
        if finish is None:
            finish = _FINISH.get(server_finish or "stop", "stop")
        usage = norm.usage
        completion = (
            usage.completion_tokens if usage else norm.reasoning_chunks + norm.answer_chunks
        )
        reasoning = usage.reasoning_tokens if usage and usage.reasoning_tokens is not None else None
        if reasoning is None:
            reasoning = min(norm.reasoning_chunks, completion)
        counted = Usage(
            prompt_tokens=usage.prompt_tokens if usage else 0,
            reasoning_tokens=reasoning,
            answer_tokens=max(0, completion - reasoning),
        )
        first = self._first_at
        thinking = None
        if self._reasoning_at is not None:
            thinking = (self._answer_at or end) - self._reasoning_at
        ttft = None if first is None else first - self._started
        t = norm.timings
        if t is not None:
            timings = Timings(
                prompt_eval_s=t.prompt_ms / 1000,
                time_to_first_token_s=ttft,
                thinking_s=thinking,
                total_s=end - self._started,
                tokens_per_s=t.predicted_n / (t.predicted_ms / 1000) if t.predicted_ms > 0 else 0.0,
            )
        else:
            decode = end - first if first is not None else 0.0
            timings = Timings(
                prompt_eval_s=ttft or 0.0,
                time_to_first_token_s=ttft,
                thinking_s=thinking,
                total_s=end - self._started,
                tokens_per_s=completion / decode if decode > 0 else 0.0,
            )
        return RemoteResult(
            finish_reason=finish,
            usage=counted,
            timings=timings,
            timings_source="server" if t is not None else "client",
            usage_source="server" if usage is not None else "client",
            server_finish_reason=server_finish,
            reasoning_via=norm.reasoning_via,
        )


def resolve_model(model: str | None, info: ServerInfo, client: RemoteClient) -> str:
    """The model name to send: ``model`` checked against the server's list, or its only one."""
    known = info.models
    if model is None:
        if len(known) == 1:
            return known[0]
        if not known:
            raise RemoteModelNotFoundError(
                f"{client.display_url} lists no models",
                hint="name the model (NAME:MODEL), or load one on the server",
            )
        raise RemoteModelNotFoundError(
            f"{client.display_url} serves {len(known)} models; name one",
            hint="one of: " + ", ".join(known[:8]),
        )
    if not known or model in known or f"{model}:latest" in known:
        return model
    raise unknown_model_error(model, known, client.display_url)


def unknown_model_error(model: str, known: Sequence[str], url: str) -> RemoteModelNotFoundError:
    close = difflib.get_close_matches(model, known, n=3, cutoff=0.5)
    if close:
        hint = "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    elif known:
        hint = "it serves: " + ", ".join(known[:8])
    else:
        hint = "load the model on the server, or check its name"
    return RemoteModelNotFoundError(f"{url} does not serve a model '{model}'", hint=hint)


def _grammar_field(info: ServerInfo, grammar: str) -> dict[str, Any]:
    """Where each server takes a GBNF grammar. llama-server: ``grammar``. SGLang: ``ebnf``
    (its xgrammar backend reads GBNF). vLLM: ``structured_outputs.grammar`` from 0.11 on,
    ``guided_grammar`` before (removed in 0.12)."""
    if info.kind == "sglang":
        return {"ebnf": grammar}
    if info.kind == "vllm":
        if _version(info.version) < (0, 11):
            return {"guided_grammar": grammar}
        return {"structured_outputs": {"grammar": grammar}}
    return {"grammar": grammar}


def _version(text: str | None) -> tuple[int, ...]:
    """``"0.10.2rc1"`` as ``(0, 10, 2)``; an unknown version counts as the newest."""
    parts = []
    for piece in (text or "").split("."):
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) if parts else (10**6,)


def _names_missing_model(message: str) -> bool:
    lowered = message.lower()
    return "model" in lowered and any(
        s in lowered for s in ("not found", "does not exist", "not loaded", "no such", "unknown")
    )
