"""Following a streaming reply: look at its live text a few times a second, show what is new.

The reply is generated in a thread worker; its text collects in the
:class:`~ponder.session.Reply`'s live text, and while it streams the follower looks
there ``STREAM_FPS`` times a second at most and appends whatever has arrived to the
:class:`ReplyView`'s two Markdown panels. Why not a message per token: measured
with bench/bench_tui.py on 2 cores, posting each token cost the event loop 26-31 %
of a core and cut the model's speed to 0.6-0.7x of `ponder run` (the loop and the
worker contend for the CPU and the GIL), and every update lays out the screen.

A frame costs the loop about the same however little it adds: Textual redraws every
widget under the changed lines, and a new line scrolls the whole conversation (~20 ms a
screen update here, 12 % of a core at 10 a second, and on 2 cores that is taken from
llama.cpp's threads). So the follower paints at most ``STREAM_FPS`` times a second, and
less when tokens come slowly: a frame waits for about :data:`TOKENS_A_FRAME` tokens at
the rate seen so far, but never longer than :data:`LONGEST_WAIT_S` (at 5 tokens/s, 2.5
updates a second of two tokens each). The chat screen changes the panel's title and
the status line in the same frame (``on_frame``), not on timers of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.timer import Timer
from textual.widget import Widget

from ponder.session import Reply, VoteReply
from ponder.tui.widgets.reply import ReplyView

STREAM_FPS = 10  # screen updates a second while a reply streams, at most
TOKENS_A_FRAME = 2  # a frame waits for about this many tokens at the rate seen so far,
LONGEST_WAIT_S = 0.4  # ... but never longer than this, unless the loop is busy
SLOWEST_UPDATE_S = 1.0  # ... and at least once a second, however busy the screen is


class StreamFollower:
    """Catches a live :class:`ReplyView` up with its reply, on a timer of ``host``'s.

    ``on_phase_change`` is called when the view turns from thinking to answering, and
    ``on_frame`` after every look, so what else changes while a reply streams (the
    panel's title, the status line) is painted in the same screen update.
    """

    def __init__(
        self,
        host: Widget,
        on_phase_change: Callable[[], object],
        on_frame: Callable[[], object] | None = None,
    ) -> None:
        self._host = host
        self._on_phase_change = on_phase_change
        self._on_frame = on_frame
        self._reply: Reply | None = None
        self._view: ReplyView | None = None
        self._timer: Timer | None = None
        self._due = 0.0
        self._frame_cost = 0.0
        self._first_token: tuple[float, int] | None = None  # when tokens came, and how many
        self._tokens = 0

    def follow(self, reply: Reply, view: ReplyView) -> None:
        """Start looking at ``reply`` for ``view``."""
        self._reply, self._view = reply, view
        self._frame_cost = 0.0
        self._first_token = None
        self._tokens = 0
        self._schedule(1 / STREAM_FPS)

    def catch_up(self) -> None:
        """Show what the worker has added to the reply since the last look."""
        reply, view = self._reply, self._view
        if reply is None or view is None:
            return
        if isinstance(reply, VoteReply):
            # The candidates stream apart; the view shows their progress, and the
            # winner's text once the vote is in (ReplyView.finish).
            lives = reply.candidates
            done = sum(1 for live in lives if live.ended)
            tokens = sum(live.reasoning_tokens + live.answer_tokens for live in lives)
            view.vote_progress(done, tokens)
            self.saw_tokens(tokens)
            return
        new = reply.live.look()
        self.saw_tokens(new.reasoning_tokens + new.answer_tokens)
        was_thinking = view.thinking
        view.add(
            new.reasoning, new.answer, new.reasoning_tokens, new.answer_tokens, new.prompt_tokens
        )
        if was_thinking != view.thinking:
            self._on_phase_change()

    def end(self) -> None:
        """The reply ended: stop the timer, take a last look, let the reply go."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.catch_up()
        self._reply = self._view = None

    def saw_tokens(self, tokens: int) -> None:
        """The reply has produced ``tokens`` tokens so far (the rate is taken from it)."""
        self._tokens = tokens
        if self._first_token is None and tokens > 0:
            self._first_token = (time.monotonic(), tokens)

    def frame_interval(self) -> float:
        """How long the next look waits for tokens (see the module docstring)."""
        first = self._first_token
        if first is None:
            return LONGEST_WAIT_S  # the prompt is being read: nothing to show yet
        elapsed = time.monotonic() - first[0]
        tokens = self._tokens - first[1]
        if tokens <= 0 or elapsed <= 0:
            return 1 / STREAM_FPS
        wait = TOKENS_A_FRAME * elapsed / tokens
        return max(1 / STREAM_FPS, min(LONGEST_WAIT_S, wait))

    def _schedule(self, delay: float) -> None:
        self._due = time.monotonic() + delay
        self._timer = self._host.set_timer(delay, self._tick)

    def _tick(self) -> None:
        """Catch up with the stream, then schedule the next look.

        A screen update costs a layout and a repaint of what is on screen. How late
        this tick fired is how long the loop was busy with the last one; the next look
        waits at least twice that, so typing stays responsive on a busy machine, and
        no less than :meth:`frame_interval`.
        """
        late = max(0.0, time.monotonic() - self._due)
        self._frame_cost = 0.7 * self._frame_cost + 0.3 * late
        self.catch_up()
        if self._on_frame is not None:
            self._on_frame()
        if self._reply is not None:
            wait = max(self.frame_interval(), 2 * self._frame_cost)
            self._schedule(min(SLOWEST_UPDATE_S, wait))
