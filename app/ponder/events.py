"""Typed events that flow from the core to the front ends.

Frozen dataclasses, matched with ``match`` by the consumers (CLI writers, the TUI).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length", "interrupted"]
# Who measured: this process's engine, a server's own report, or this client's clock.
Source = Literal["local", "server", "client"]


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's thinking (the text inside ``<think>…</think>``)."""

    text: str


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """A piece of the answer proper."""

    text: str


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds, measured with a monotonic clock."""

    load_s: float = 0.0
    prompt_eval_s: float = 0.0
    time_to_first_token_s: float | None = None
    thinking_s: float | None = None
    total_s: float = 0.0
    tokens_per_s: float = 0.0

    def as_dict(self) -> dict[str, float | None]:
        """Rounded for JSON output and the history (tokens/s to 2 places, seconds to 4)."""

        def sec(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "load_s": sec(self.load_s),
            "prompt_eval_s": sec(self.prompt_eval_s),
            "time_to_first_token_s": sec(self.time_to_first_token_s),
            "thinking_s": sec(self.thinking_s),
            "total_s": sec(self.total_s),
            "tokens_per_s": round(self.tokens_per_s, 2),
        }


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    reasoning_tokens: int = 0
    answer_tokens: int = 0
    # Of the prompt tokens, those whose KV cache was already there (this process's, or
    # a continued chat's saved state) and were not evaluated again.
    cached_tokens: int = 0

    @property
    def completion_tokens(self) -> int:
        return self.reasoning_tokens + self.answer_tokens


@dataclass(frozen=True, slots=True)
class Started:
    """A reply has started: which model and which chat it belongs to."""

    model: str
    chat_id: int | None


@dataclass(frozen=True, slots=True)
class Finished:
    """A reply has ended, for whatever reason."""

    finish_reason: FinishReason
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)
    timings_source: Source = "local"
    usage_source: Source = "local"
    # The thinking budget the reply ran under (None: none), and whether it closed the
    # thinking (a budget of 0 closes it before the first token).
    think_budget: int | None = None
    budget_hit: bool = False
    # A voted reply (--votes N): the tally and every candidate; this Finished is the
    # winner's own.
    votes: Voted | None = None


# -- a voted reply: N candidates of one prompt, then the tally ---------------------------


@dataclass(frozen=True, slots=True)
class CandidateDelta:
    """A piece of candidate ``index``'s thinking or answer, as it streams."""

    index: int
    delta: ReasoningDelta | AnswerDelta


@dataclass(frozen=True, slots=True)
class CandidateResult:
    """One candidate, ended: its text, its extracted final answer, how it ended."""

    index: int
    reasoning: str
    answer: str
    extracted: str | None  # the normalised final answer (ponder.votes); None: none found
    finished: Finished
    seed: int


@dataclass(frozen=True, slots=True)
class CandidateFinished:
    """Candidate ``index`` has ended (the others may still stream)."""

    result: CandidateResult


@dataclass(frozen=True, slots=True)
class Voted:
    """Every candidate has ended and the most common answer won."""

    n: int
    winner: str | None  # the winning extracted answer; None when no candidate had one
    winner_index: int  # the candidate whose reply is the reply
    tally: tuple[tuple[str, int], ...]  # answer, votes; most votes first
    agree: int
    summary: str  # "4 of 5 agree: 391"
    candidates: tuple[CandidateResult, ...]


ChatEvent = (
    Started | ReasoningDelta | AnswerDelta | Finished | CandidateDelta | CandidateFinished | Voted
)


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """Bytes of one file transferred so far (``total`` is None when unknown)."""

    filename: str
    done: int
    total: int | None
    bytes_per_s: float = 0.0


# -- while a model is being opened ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should know while a model is opened (a pull first, a retry)."""

    text: str


@dataclass(frozen=True, slots=True)
class Planned:
    """How the model will load: a one-line summary, the plan as text, and its warnings."""

    model: str
    summary: str
    plan: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PullStarted:
    name: str
    files: int
    size: int


@dataclass(frozen=True, slots=True)
class PullFinished:
    name: str
    size: int
    where: str


OpenEvent = Notice | Planned | PullStarted | DownloadProgress | PullFinished
