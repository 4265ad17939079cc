"""A voted reply's candidates, folded under the winner: each one's answer and how it ended.

The winner is the reply itself (its panels above); this collapsible lists every
candidate, the winner marked, with its extracted final answer, how it ended and its
answer as Markdown, so a user can see why the vote went the way it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.widget import Widget
from textual.widgets import Collapsible, Static

from ponder.tui.widgets.markdown import MarkdownText


@dataclass(frozen=True, slots=True)
class CandidateView:
    """What the panel shows of one candidate (from a live vote or the history)."""

    index: int
    extracted: str | None
    finish_reason: str
    answer: str
    tokens: int


def panel_title(n: int) -> str:
    """The fold's title: the count (the tally itself is on the reply's meta line)."""
    return f"{n} candidates"


class CandidatesPanel(Collapsible):
    """Every candidate of a vote, folded until opened."""

    def __init__(self, candidates: Sequence[CandidateView], winner: int) -> None:
        children: list[Widget] = []
        for c in candidates:
            found = c.extracted if c.extracted is not None else "no answer"
            mark = " · winner" if c.index == winner else ""
            line = f"Candidate {c.index + 1}: {found} · {c.finish_reason} · {c.tokens:,} tokens"
            children.append(Static(line + mark, classes="candidate-head", markup=False))
            children.append(MarkdownText(c.answer or "(no answer)", classes="candidate-answer"))
        super().__init__(*children, title=panel_title(len(candidates)), collapsed=True)
        self.add_class("candidates")
