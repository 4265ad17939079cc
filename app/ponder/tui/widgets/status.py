"""The status line under the prompt: the model, where it runs, the context, the speed.

It is one line however narrow the terminal: when everything does not fit, the least
needed parts go first (the key hint, which the footer also shows, then a server's
address, where the model runs, the context), and last the model's name is shortened
in the middle, so the state ("thinking…") and the speed stay in sight.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.widgets import Static


@dataclass(frozen=True)
class Status:
    """What the line says; :meth:`fit` makes it one line of a given width."""

    model: str | None
    placement: str = ""
    short_placement: str = ""  # the placement when room is short ("vllm 0.19.1")
    ctx_used: int = 0
    ctx_size: int = 0
    tokens_per_s: float = 0.0
    state: str = ""
    hint: str = ""  # a key for the state ("Ctrl+G wraps up"), said after it

    def fit(self, width: int) -> str:
        if self.model is None:
            line = self.state or "no model loaded · F2 picks one"
            return line[:width] if width > 0 else line
        state = f"{self.state} ({self.hint})" if self.state and self.hint else self.state
        ctx = f"ctx {self.ctx_used:,}/{self.ctx_size:,}" if self.ctx_size else ""
        speed = f"{self.tokens_per_s:.1f} tok/s" if self.tokens_per_s else ""
        tries = [
            [self.placement, ctx, speed, state],
            [self.placement, ctx, speed, self.state],
            [self.short_placement or self.placement, ctx, speed, self.state],
            [ctx, speed, self.state],
            [speed, self.state],
        ]
        for rest in tries:
            line = " · ".join(p for p in (self.model, *rest) if p)
            if width <= 0 or len(line) <= width:
                return line
        tail = " · ".join(p for p in (speed, self.state) if p)
        room = width - len(tail) - 3 if tail else width  # " · " between name and rest
        if room < 8:  # no name is better than three letters of one
            return tail[:width]
        return f"{_middle(self.model, room)} · {tail}" if tail else _middle(self.model, room)


def _middle(text: str, width: int) -> str:
    """``text`` in ``width`` characters, its middle left out."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


class StatusLine(Static):
    """Model, where it runs, context used / size, speed, and what the reply is doing."""

    _status = Status(model=None)

    def show(
        self,
        *,
        model: str | None,
        placement: str = "",
        short_placement: str = "",
        ctx_used: int = 0,
        ctx_size: int = 0,
        tokens_per_s: float = 0.0,
        state: str = "",
        hint: str = "",
    ) -> None:
        self._status = Status(
            model, placement, short_placement, ctx_used, ctx_size, tokens_per_s, state, hint
        )
        self._draw()

    def on_resize(self, event: events.Resize) -> None:
        self._draw()

    def _draw(self) -> None:
        # One fixed line: no layout needed.
        self.update(self._status.fit(self.content_size.width), layout=False)
