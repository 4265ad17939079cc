"""A reply from the local engine: tokens in, split deltas and the counts out.

The llama.cpp engine yields the text of each token; this source splits it into
reasoning and answer under the model's prompt policy, counts tokens per phase, times
the phases, and closes the thinking when the user asks to wrap up or when the
thinking reaches its budget (:func:`closing_injector`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from ponder.engine import Engine, GenerationStats, Injector
from ponder.events import AnswerDelta, Finished, ReasoningDelta, Timings, Usage
from ponder.reasoning import ReasoningSplitter
from ponder.session.reply import LiveText

# What closes the thinking when a user asks the model to wrap up: the model reads it
# as its own "</think>" and goes on to the answer.
WRAP_UP_TEXT = "\n</think>\n\n"


def budget_text(bridge: str | None) -> str:
    """What closes the thinking at its budget: the catalog entry's bridging sentence
    (Qwen3's "Considering the limited time by the user, ...") and the close tag."""
    return (f"\n\n{bridge.strip()}" if bridge else "") + WRAP_UP_TEXT


class LocalSource:
    """The deltas of one generation on a local engine (a :class:`ReplySource`)."""

    def __init__(
        self,
        engine: Engine,
        generation: Iterator[str],
        splitter: ReasoningSplitter,
        stats: GenerationStats,
        think_budget: int | None = None,
    ) -> None:
        self._engine = engine
        self._think_budget = think_budget
        self._generation = generation
        self._splitter = splitter
        self._stats = stats
        self._clock = PhaseClock(stats.started_at)

    def deltas(self, live: LiveText) -> Iterator[ReasoningDelta | AnswerDelta]:
        for text in self._generation:
            yield from self.feed(text, live)
        yield from self.flush()

    def feed(self, text: str, live: LiveText) -> Iterator[ReasoningDelta | AnswerDelta]:
        """One token's text, counted and split (a voted reply feeds each candidate's)."""
        live.count(reasoning=self._splitter.in_reasoning)
        if live.prompt_tokens is None:
            live.prompt_tokens = self._stats.prompt_tokens  # the engine has read it
        for delta in self._splitter.feed(text):
            self._clock.saw(delta)
            yield delta

    def flush(self) -> Iterator[ReasoningDelta | AnswerDelta]:
        """What the splitter still holds, once the tokens have ended."""
        for delta in self._splitter.flush():
            self._clock.saw(delta)
            yield delta

    @property
    def stats(self) -> GenerationStats:
        return self._stats

    def close(self) -> None:
        close = getattr(self._generation, "close", None)
        if close is not None:
            close()

    def outcome(self, finished: bool, live: LiveText) -> Finished:
        stats = self._stats
        # An injected "</think>" is not the model's: take it off the counts.
        reasoning_tokens = live.reasoning_tokens - (1 if live.wrapped_up else 0)
        usage = Usage(
            stats.prompt_tokens,
            max(reasoning_tokens, 0),
            live.answer_tokens,
            cached_tokens=stats.cached_tokens,
        )
        reason = stats.finish_reason if finished else "interrupted"
        timings = self._clock.timings(self._engine.load_s, stats)
        return Finished(
            finish_reason=reason,
            usage=usage,
            timings=timings,
            think_budget=self._think_budget,
            budget_hit=live.budget_hit,
        )


class PhaseClock:
    """When the first token came and how long the model thought."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.first: float | None = None
        self.first_reasoning: float | None = None
        self.first_answer: float | None = None

    def saw(self, delta: ReasoningDelta | AnswerDelta) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        if isinstance(delta, ReasoningDelta):
            if self.first_reasoning is None:
                self.first_reasoning = now
        elif self.first_answer is None:
            self.first_answer = now

    def timings(self, load_s: float, stats: GenerationStats) -> Timings:
        end = time.monotonic()
        thinking: float | None = None
        if self.first_reasoning is not None:
            thinking = (self.first_answer or end) - self.started
        decode_tokens = max(stats.completion_tokens - 1, 0)
        return Timings(
            load_s=load_s,
            prompt_eval_s=stats.prompt_eval_s,
            time_to_first_token_s=None if self.first is None else self.first - self.started,
            thinking_s=thinking,
            total_s=end - self.started,
            tokens_per_s=decode_tokens / stats.decode_s if stats.decode_s > 0 else 0.0,
        )


def closing_injector(
    wrap_up: threading.Event | None,
    splitter: ReasoningSplitter,
    live: LiveText,
    *,
    think_budget: int | None = None,
    bridge: str | None = None,
) -> Injector | None:
    """What the engine asks after each token: the close tag, once, while the model still
    thinks, when the user has asked to wrap up or when the reasoning has reached
    ``think_budget`` tokens (then after the bridging sentence). None when neither can
    happen (a headless run without a budget), so the engine asks nothing."""
    if wrap_up is None and not think_budget:
        return None
    event = wrap_up

    def inject() -> str | None:
        if live.wrapped_up or not splitter.in_reasoning:
            return None
        if think_budget and live.reasoning_tokens >= think_budget:
            live.wrapped_up = live.budget_hit = True
            return budget_text(bridge)
        if event is not None and event.is_set():
            live.wrapped_up = True
            return WRAP_UP_TEXT
        return None

    return inject
