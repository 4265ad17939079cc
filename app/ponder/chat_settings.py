"""A chat's own settings: sampling, context size, system prompt, kept reasoning, thinking budget.

They are kept with the chat in the history, and both front ends honour them: the
chat UI's settings form edits them, and ``ponder run --chat ID`` or ``-c`` continues
a chat with them (flags given on the command line win). An empty value means "the
model's recommended value", so a chat follows its model's catalog entry until the
user sets something. Which sampling options a chat may set comes from
:mod:`ponder.sampling`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ponder.sampling import CHAT_OPTIONS, MIN_CTX, Number, check_overrides


@dataclass(frozen=True)
class ChatSettings:
    sampling: Mapping[str, Number] = field(default_factory=dict)  # option name -> value
    n_ctx: int | None = None
    system_prompt: str | None = None
    keep_reasoning: bool = False
    # Reasoning tokens after which the thinking is closed and the model answers; 0: answer
    # at once (no thinking at all); None: no budget.
    think_budget: int | None = None
    # Candidates to sample and vote among for each prompt (2 – MAX_VOTES); None: one.
    votes: int | None = None

    def __post_init__(self) -> None:
        allowed = {o.name for o in CHAT_OPTIONS}
        unknown = set(self.sampling) - allowed
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]} is not a per-chat setting")
        object.__setattr__(self, "sampling", check_overrides(self.sampling))
        if self.n_ctx is not None and self.n_ctx < MIN_CTX:
            raise ValueError(f"the context size must be at least {MIN_CTX}, not {self.n_ctx}")
        if self.think_budget is not None:
            check_think_budget(self.think_budget)
        if self.votes is not None and not 2 <= self.votes <= MAX_VOTES:
            raise ValueError(f"votes must be 2 – {MAX_VOTES}, not {self.votes}")

    def get(self, name: str) -> Number | None:
        return self.sampling.get(name)

    def to_saved(self) -> dict[str, object]:
        """The history's settings column (the system prompt has a column of its own)."""
        saved: dict[str, object] = dict(self.sampling)
        if self.n_ctx is not None:
            saved["n_ctx"] = self.n_ctx
        if self.keep_reasoning:
            saved["keep_reasoning"] = True
        if self.think_budget is not None:
            saved["think_budget"] = self.think_budget
        if self.votes is not None:
            saved["votes"] = self.votes
        return saved

    @classmethod
    def from_saved(cls, data: Mapping[str, object], system_prompt: str | None) -> ChatSettings:
        """Settings read back from the history; a value that is no longer valid is dropped."""
        sampling: dict[str, Number] = {}
        for opt in CHAT_OPTIONS:
            value = data.get(opt.name)
            if value is None:
                continue
            try:
                sampling[opt.name] = opt.check(value)
            except ValueError:
                continue
        n_ctx = data.get("n_ctx")
        valid_ctx = isinstance(n_ctx, int) and not isinstance(n_ctx, bool) and n_ctx >= MIN_CTX
        budget = data.get("think_budget")
        try:
            budget = check_think_budget(budget) if budget is not None else None
        except ValueError:
            budget = None
        votes = data.get("votes")
        valid_votes = (
            isinstance(votes, int) and not isinstance(votes, bool) and 2 <= votes <= MAX_VOTES
        )
        return cls(
            sampling=sampling,
            n_ctx=n_ctx if valid_ctx else None,  # type: ignore[arg-type]
            system_prompt=system_prompt,
            keep_reasoning=data.get("keep_reasoning") is True,
            think_budget=budget,
            votes=votes if valid_votes else None,  # type: ignore[arg-type]
        )


MAX_THINK_BUDGET = 1_000_000
MAX_VOTES = 16  # candidates of one voted reply: llama.cpp decodes them in one context


def check_think_budget(value: object) -> int:
    """A thinking budget in tokens (0 = no thinking), or ValueError saying what is allowed."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"the thinking budget must be a whole number of tokens, not {value!r}")
    if not 0 <= value <= MAX_THINK_BUDGET:
        raise ValueError(
            f"the thinking budget must be 0 – {MAX_THINK_BUDGET:,} tokens, not {value:,}"
        )
    return value
