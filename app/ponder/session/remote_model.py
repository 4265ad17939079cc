"""A model on a remote server, behind the same reply use case as a local one.

:class:`RemoteModel` is a :class:`~ponder.session.loaded.LoadedModel` whose deltas come
from :class:`~ponder.remote.RemoteEngine`: the chat's turns go to the server (which
renders them with the model's own template), and its stream comes back already split.
Everything around the deltas (the history rows, the live text, ``Started`` and
``Finished``, one reply at a time) is the shared code, so a remote chat is saved,
listed, searched, exported and continued like a local one.

Wrap up (Ctrl+G in the chat UI) cannot inject a token into a server's decoding, so
:class:`RemoteSource` closes the stream (the server stops generating) and asks again
with the reasoning so far plus ``</think>`` as the start of the assistant's message;
the server goes on from there with the answer. A thinking budget is kept the same
way, counted here on the stream (one delta per token, as the servers send them): at
the budget the stream is closed and the answer asked for after the bridging sentence
and ``</think>``; a budget of 0 asks with an empty, closed thinking from the start.
Servers' own budget knobs are not used: llama-server's is a per-server flag in the
builds we test against, and a client-side cut works the same on every server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from ponder.catalog import PromptPolicy
from ponder.events import AnswerDelta, Finished, ReasoningDelta, Timings, Usage
from ponder.history import History
from ponder.prompt import Turn
from ponder.remote import RemoteEngine, RemoteResult, RemoteStream
from ponder.sampling import SamplingParams
from ponder.session.candidates import CandidatesSource, ParallelCandidates
from ponder.session.loaded import LoadedModel, ReplyStart
from ponder.session.local_source import WRAP_UP_TEXT, budget_text
from ponder.session.reply import LiveText, ReplySource

Delta = ReasoningDelta | AnswerDelta


class RemoteModel(LoadedModel):
    """``NAME:MODEL``: one model on the server configured as ``[remotes.NAME]``."""

    def __init__(
        self,
        name: str,
        engine: RemoteEngine,
        *,
        sampling: SamplingParams,
        history: Callable[[], History | None],
        catalog_id: str | None = None,
        warnings: tuple[str, ...] = (),
    ) -> None:
        super().__init__(history)
        self._name = name
        self.remote = engine
        self._sampling = sampling
        self.catalog_id = catalog_id
        self._warnings = warnings

    @property
    def name(self) -> str:
        return self._name

    @property
    def policy(self) -> PromptPolicy:
        return self.remote.policy

    @property
    def defaults(self) -> SamplingParams:
        return self._sampling

    @property
    def n_ctx(self) -> int:
        """The server's context per request where it says (llama-server, SGLang), else 0."""
        return self.remote.info.n_ctx or 0

    @property
    def placement(self) -> str:
        return f"{self.short_placement} at {self.remote.client.display_url}"

    @property
    def short_placement(self) -> str:
        return self.remote.info.label

    @property
    def warnings(self) -> tuple[str, ...]:
        return self._warnings

    def _source(self, start: ReplyStart) -> ReplySource:
        keep, cancel, budget = start.settings.keep_reasoning, start.cancel, start.think_budget
        opening = self.remote.policy.think_prefill or "<think>\n"
        prefill = opening.rstrip() + "\n" + WRAP_UP_TEXT if budget == 0 else None
        # stream() returns once the server has said yes, so a refusal records nothing.
        first = self.remote.stream(
            start.turns, start.sampling, cancel=cancel, keep_reasoning=keep, prefill=prefill
        )
        return RemoteSource(
            self.remote,
            start.turns,
            start.sampling,
            first,
            cancel,
            start.wrap_up,
            keep,
            think_budget=budget,
        )

    def _candidates(
        self, start: ReplyStart, seeds: list[int], lives: list[LiveText]
    ) -> CandidatesSource:
        """One request per candidate, all at once (the server batches them when it has
        the slots). The first is sent now, so a refusal records nothing."""

        def make(index: int) -> ReplySource:
            sampling = replace(start.sampling, seed=seeds[index])
            return self._source(replace(start, sampling=sampling, live=lives[index]))

        return ParallelCandidates(make(0), make, len(seeds))

    def _close_engine(self) -> None:
        self.remote.close()


class RemoteSource:
    """The deltas of one remote reply (a :class:`ReplySource`), wrap up included."""

    def __init__(
        self,
        engine: RemoteEngine,
        turns: list[Turn],
        sampling: SamplingParams,
        stream: RemoteStream,
        cancel: threading.Event | None,
        wrap_up: threading.Event | None,
        keep_reasoning: bool = False,
        *,
        think_budget: int | None = None,
    ) -> None:
        self._engine = engine
        self._think_budget = think_budget
        self._keep_reasoning = keep_reasoning
        self._turns = turns
        self._sampling = sampling
        self._stream = stream
        self._cancel = cancel
        self._wrap_up = wrap_up
        self._results: list[RemoteResult] = []
        self._started = time.monotonic()

    def deltas(self, live: LiveText) -> Iterator[Delta]:
        reasoning: list[str] = []
        for delta in self._stream:
            thinking = isinstance(delta, ReasoningDelta)
            live.count(reasoning=thinking)
            if thinking:
                reasoning.append(delta.text)
            yield delta
            if thinking and self._wants_wrap_up(live):
                break
        else:
            self._keep_result()
            return
        # Wrap up or the budget: stop this stream and ask for the answer after the
        # thinking so far.
        budget = self._think_budget
        live.budget_hit = bool(budget) and live.reasoning_tokens >= (budget or 0)
        live.wrapped_up = True
        self._stream.close()
        self._keep_result()
        opening = self._engine.policy.think_prefill or "<think>\n"
        bridge = self._engine.policy.budget_bridge
        closing = budget_text(bridge) if live.budget_hit else WRAP_UP_TEXT
        prefill = (opening + "".join(reasoning)).rstrip() + closing
        self._stream = self._engine.stream(
            self._turns,
            self._sampling,
            cancel=self._cancel,
            prefill=prefill,
            keep_reasoning=self._keep_reasoning,
        )
        for delta in self._stream:
            live.count(reasoning=isinstance(delta, ReasoningDelta))
            yield delta
        self._keep_result()

    def _wants_wrap_up(self, live: LiveText) -> bool:
        if live.wrapped_up:
            return False
        budget = self._think_budget
        if budget and live.reasoning_tokens >= budget:
            return True
        return self._wrap_up is not None and self._wrap_up.is_set()

    def _keep_result(self) -> None:
        result = self._stream.result
        if result is not None and (not self._results or self._results[-1] is not result):
            self._results.append(result)

    def close(self) -> None:
        self._stream.close()
        self._keep_result()

    def outcome(self, finished: bool, live: LiveText) -> Finished:
        results = self._results
        if not results:
            return Finished("interrupted")
        first, last = results[0], results[-1]
        reason = last.finish_reason if finished else "interrupted"
        if live.wrapped_up and first.finish_reason == "interrupted" and finished:
            reason = last.finish_reason
        usage = Usage(
            prompt_tokens=first.usage.prompt_tokens,
            reasoning_tokens=sum(r.usage.reasoning_tokens for r in results),
            answer_tokens=sum(r.usage.answer_tokens for r in results),
        )
        t = first.timings
        timings = Timings(
            load_s=0.0,
            prompt_eval_s=t.prompt_eval_s,
            time_to_first_token_s=t.time_to_first_token_s,
            thinking_s=t.thinking_s,
            total_s=time.monotonic() - self._started,
            tokens_per_s=last.timings.tokens_per_s if len(results) > 1 else t.tokens_per_s,
        )
        return Finished(
            finish_reason=reason,
            usage=usage,
            timings=timings,
            timings_source=first.timings_source,
            usage_source=first.usage_source,
            think_budget=self._think_budget,
            budget_hit=live.budget_hit,
        )
