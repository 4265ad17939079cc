"""One assistant reply: a reasoning panel that folds, and the answer as Markdown.

Both panels are a :class:`~ponder.tui.widgets.markdown.MarkdownText`, one widget each:
text is appended as it streams, finished Markdown blocks keep their rendered lines and
only the last block is rendered again, so an update costs the same however long the
reply has grown. The reasoning panel is a ``Collapsible`` titled with the live thinking time
and token count; it folds the moment the answer starts, unless the user has opened it
by hand. While it streams it shows the last :data:`REASONING_TAIL` lines of the trace, so
the screen does not scroll and lay out again at every line of it; opened by hand, or
once the thinking ends, it shows the whole trace.

A voted reply (the chat's "Votes" setting) shows its progress in the panel's title
while the candidates are decoded, then the winner's text, "4 of 5 agree: 391" under
it, and every candidate folded in a :class:`CandidatesPanel`.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Collapsible, Static
from textual.widgets._collapsible import CollapsibleTitle

from ponder.events import Finished, Voted
from ponder.session import Message as SavedMessage
from ponder.tui.format import duration, thinking_title
from ponder.tui.widgets.candidates import CandidatesPanel, CandidateView
from ponder.tui.widgets.markdown import MarkdownText

REASONING_TAIL = 8  # lines of a streaming trace shown, the latest ones


class UserTurn(Static):
    """What the user asked (shown as typed, not as Markdown)."""

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False, classes="user-turn")


class PanelTitle(CollapsibleTitle):
    """A panel title that lays the screen out again only when its width changes.

    The live thinking title is redrawn twice a second (its seconds and tokens), and
    Textual's title asks for a layout of the whole screen each time: ~50 ms of the
    event loop on 2 cores (bench/bench_tui.py under cProfile), a loop the model's
    threads share the CPU with. The same width needs only a repaint."""

    _width = -1

    def _update_label(self) -> None:
        assert isinstance(self.label, Content)
        symbol = self.collapsed_symbol if self.collapsed else self.expanded_symbol
        content = Content.assemble(symbol, " ", self.label)
        width = content.cell_length
        self.update(content, layout=width != self._width)
        self._width = width


class ReasoningPanel(Collapsible):
    """The thinking, folded or not; remembers whether the user has toggled it."""

    touched = False

    def __init__(self, *children: Widget, title: str, collapsed: bool) -> None:
        super().__init__(*children, title=title, collapsed=collapsed)
        old = self._title
        self._title = PanelTitle(
            label=title,
            collapsed_symbol=old.collapsed_symbol,
            expanded_symbol=old.expanded_symbol,
            collapsed=collapsed,
        )

    def _on_collapsible_title_toggle(self, event: CollapsibleTitle.Toggle) -> None:
        self.mark_touched()
        super()._on_collapsible_title_toggle(event)

    def mark_touched(self) -> None:
        """The user folded or opened it: from now on it shows the whole trace."""
        self.touched = True
        for text in self.query(MarkdownText):
            text.show_tail(None)


class ReplyView(Vertical, can_focus=True):
    """An assistant reply, live or loaded from the history."""

    BINDINGS = [
        Binding("t", "toggle_reasoning", "Fold/unfold thinking"),
        Binding("c", "copy_answer", "Copy answer"),
        Binding("r", "regenerate", "Regenerate"),
    ]

    class RegenerateRequested(Message):
        def __init__(self, reply: ReplyView) -> None:
            super().__init__()
            self.reply = reply

    def __init__(
        self,
        *,
        reasoning: str = "",
        answer: str = "",
        meta: str = "",
        thought_s: float | None = None,
        reasoning_tokens: int = 0,
        live: bool = False,
        message_id: int | None = None,
        budget: int | None = None,
        votes: int | None = None,
        candidates: CandidatesPanel | None = None,
    ) -> None:
        super().__init__(classes="reply")
        self.message_id = message_id
        self.budget = budget
        self.votes = votes  # candidates of a voted reply
        self._vote_progress = (0, 0)  # candidates ended, tokens so far
        self._candidates = candidates
        self.live = live
        self.started = time.monotonic()
        self.reasoning_tokens = reasoning_tokens
        self.answer_tokens = 0
        self.prompt_tokens: int | None = None  # while it streams, once the engine says
        self._reasoning_text = [reasoning] if reasoning else []
        self._answer_text = [answer] if answer else []
        self._thinking_done = bool(answer) or not live
        self._thought_s = thought_s
        tail = REASONING_TAIL if live and not answer else None
        self._reasoning = MarkdownText(reasoning, tail=tail, classes="reasoning")
        self._panel = ReasoningPanel(
            self._reasoning,
            title=self._title(),
            collapsed=not live or bool(answer),
        )
        self._panel.display = bool(reasoning) or live
        self._answer = MarkdownText(answer, classes="answer")
        self._answer.display = bool(answer)
        self._meta = Static(meta, classes="meta", markup=False)

    def compose(self) -> ComposeResult:
        yield self._panel
        yield self._answer
        if self._candidates is not None:
            yield self._candidates
        yield self._meta

    # -- text --------------------------------------------------------------------

    @property
    def answer_text(self) -> str:
        return "".join(self._answer_text)

    @property
    def reasoning_text(self) -> str:
        return "".join(self._reasoning_text)

    @property
    def reasoning_open(self) -> bool:
        return not self._panel.collapsed

    @property
    def thinking(self) -> bool:
        return self.live and not self._thinking_done

    @property
    def context_tokens(self) -> int | None:
        """The context this reply fills so far (its prompt and what it generated), once
        the prompt's size is known."""
        if self.prompt_tokens is None:
            return None
        return self.prompt_tokens + self.reasoning_tokens + self.answer_tokens

    @property
    def tokens_per_s(self) -> float | None:
        """The speed so far, once the reply has streamed for half a second."""
        elapsed = time.monotonic() - self.started
        if elapsed <= 0.5:
            return None
        return (self.reasoning_tokens + self.answer_tokens) / elapsed

    def _title(self) -> str:
        if self._thinking_done:
            seconds = self._thought_s if self._thought_s is not None else 0.0
            if not self._reasoning_text and not self.live:
                return "No thinking" if self.budget != 0 else "No thinking (budget 0)"
            return thinking_title(seconds, self.reasoning_tokens, done=True, budget=self.budget)
        elapsed = time.monotonic() - self.started
        if self.votes:
            done, tokens = self._vote_progress
            return (
                f"Voting… {duration(elapsed)} · {done} of {self.votes} candidates done"
                f" · {tokens:,} tokens"
            )
        return thinking_title(elapsed, self.reasoning_tokens, done=False, budget=self.budget)

    def vote_progress(self, done: int, tokens: int) -> None:
        """A voted reply streams: how many candidates have ended, and their tokens."""
        self._vote_progress = (done, tokens)

    # -- streaming (called on the UI thread) ---------------------------------------

    def add(
        self,
        reasoning: str,
        answer: str,
        reasoning_tokens: int,
        answer_tokens: int,
        prompt_tokens: int | None = None,
    ) -> None:
        """Append newly streamed text to the panels it belongs to."""
        self.reasoning_tokens = reasoning_tokens
        self.answer_tokens = answer_tokens
        if prompt_tokens is not None:
            self.prompt_tokens = prompt_tokens
        if reasoning:
            self._reasoning_text.append(reasoning)
            self._panel.display = True
            self._reasoning.append(reasoning)
        if answer:
            if not self._thinking_done:
                self._end_thinking()
            self._answer_text.append(answer)
            self._answer.display = True
            self._answer.append(answer)

    def _end_thinking(self) -> None:
        self._thinking_done = True
        self._reasoning.show_tail(None)
        self._thought_s = time.monotonic() - self.started
        if not (self._panel.touched and not self._panel.collapsed):
            self._panel.collapsed = True  # unless the user opened it by hand
        if not self._reasoning_text:
            self._panel.display = False
        self._panel.title = self._title()

    def tick(self) -> None:
        """Refresh the live title (a timer calls this a few times a second)."""
        if self.live:
            self._panel.title = self._title()

    def finish(self, finished: Finished) -> None:
        """The stream ended: fold the thinking, show what it cost."""
        voted = finished.votes
        if voted is not None:  # nothing streamed into the panels: the winner's text now
            winner = voted.candidates[voted.winner_index]
            usage = finished.usage
            self.add(winner.reasoning, winner.answer, usage.reasoning_tokens, usage.answer_tokens)
            self._candidates = candidates_panel(voted)
            self.mount(self._candidates, before=self._meta)
        if not self._thinking_done:
            self._end_thinking()
        self._reasoning.settle()
        self._answer.settle()
        self._thought_s = finished.timings.thinking_s or self._thought_s
        self.reasoning_tokens = finished.usage.reasoning_tokens
        self.live = False
        self._panel.title = self._title()
        line = meta_line(
            finished.finish_reason, finished.timings.tokens_per_s, finished.usage.completion_tokens
        )
        self._meta.update(f"{voted.summary} · {line}" if voted is not None else line)

    def mark_failed(self, text: str) -> None:
        self.live = False
        self._meta.update(text)
        self.add_class("failed")

    # -- actions -----------------------------------------------------------------

    def set_reasoning_open(self, open_: bool) -> None:
        if self._panel.display:
            self._panel.mark_touched()
            self._panel.collapsed = not open_

    def action_toggle_reasoning(self) -> None:
        self.set_reasoning_open(self._panel.collapsed)

    def action_copy_answer(self) -> None:
        self.app.copy_to_clipboard(self.answer_text)
        self.notify("Answer copied to the clipboard")

    def action_regenerate(self) -> None:
        self.post_message(self.RegenerateRequested(self))

    @classmethod
    def from_saved(cls, message: SavedMessage) -> ReplyView:
        thought = message.timings.get("thinking_s")
        tokens = (message.reasoning_tokens or 0) + (message.answer_tokens or 0)
        speed = message.timings.get("tokens_per_s")
        budget = message.params.get("think_budget")
        votes = message.params.get("votes")
        summary = votes.get("summary") if isinstance(votes, dict) else None
        panel = None
        if message.candidates and isinstance(summary, str):
            winner = votes.get("winner_index") if isinstance(votes, dict) else None
            views = [
                CandidateView(
                    c.index,
                    c.extracted,
                    c.finish_reason or c.status,
                    c.content,
                    (c.reasoning_tokens or 0) + (c.answer_tokens or 0),
                )
                for c in message.candidates
            ]
            panel = CandidatesPanel(views, winner if isinstance(winner, int) else -1)
        meta = meta_line(
            message.finish_reason or message.status,
            float(speed) if isinstance(speed, (int, float)) else 0.0,
            tokens,
            status=message.status,
        )
        return cls(
            reasoning=message.reasoning,
            answer=message.content,
            meta=f"{summary} · {meta}" if panel is not None else meta,
            thought_s=float(thought) if isinstance(thought, (int, float)) else None,
            reasoning_tokens=message.reasoning_tokens or 0,
            message_id=message.id,
            budget=budget if isinstance(budget, int) and not isinstance(budget, bool) else None,
            candidates=panel,
        )


def candidates_panel(voted: Voted) -> CandidatesPanel:
    views = [
        CandidateView(
            c.index,
            c.extracted,
            c.finished.finish_reason,
            c.answer,
            c.finished.usage.completion_tokens,
        )
        for c in voted.candidates
    ]
    return CandidatesPanel(views, voted.winner_index)


def meta_line(reason: str, tokens_per_s: float, tokens: int, *, status: str | None = None) -> str:
    """The line under an answer: how it ended and how fast it came."""
    parts = []
    if status == "interrupted" or reason == "interrupted":
        parts.append("■ stopped: partial reply")
    elif reason == "length":
        parts.append("■ cut off at the token limit")
    elif status == "error":
        parts.append("■ failed")
    if tokens:
        parts.append(f"{tokens:,} tokens")
    if tokens_per_s:
        parts.append(f"{tokens_per_s:.1f} tok/s")
    return " · ".join(parts)
