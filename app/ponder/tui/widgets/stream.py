"""Following a streaming reply: look at its live text a few times a second, show what is new.

The reply is generated in a thread worker; its text collects in the
:class:`~ponder.session.Reply`'s live text, and while it streams the follower looks
there ``STREAM_FPS`` times a second at most and appends whatever has arrived to the
:class:`ReplyView`'s two Markdown panels. Why not a message per token: measured
with bench/bench_tui.py on 2 cores, posting each token cost the event loop 26-31 %
of a core and cut the model's speed to 0.6-0.7x of `ponder run` (the loop and the
worker contend for the CPU and the GIL), and every update lays out the screen.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.timer import Timer
from textual.widget import Widget

from ponder.session import Reply, VoteReply
from ponder.tui.widgets.reply import ReplyView

STREAM_FPS = 10  # screen updates a second while a reply streams, at most
SLOWEST_UPDATE_S = 1.0  # ... and at least once a second, however busy the screen is


class StreamFollower:
    """Catches a live :class:`ReplyView` up with its reply, on a timer of ``host``'s.

    ``on_phase_change`` is called when the view turns from thinking to answering.
    """

    def __init__(self, host: Widget, on_phase_change: Callable[[], object]) -> None:
        self._host = host
        self._on_phase_change = on_phase_change
        self._reply: Reply | None = None
        self._view: ReplyView | None = None
        self._timer: Timer | None = None
        self._due = 0.0
        self._frame_cost = 0.0

    def follow(self, reply: Reply, view: ReplyView) -> None:
        """Start looking at ``reply`` for ``view``."""
        self._reply, self._view = reply, view
        self._frame_cost = 0.0
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
            return
        new = reply.live.look()
        was_thinking = view.thinking
        view.add(new.reasoning, new.answer, new.reasoning_tokens, new.answer_tokens)
        if was_thinking != view.thinking:
            self._on_phase_change()

    def end(self) -> None:
        """The reply ended: stop the timer, take a last look, let the reply go."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.catch_up()
        self._reply = self._view = None

    def _schedule(self, delay: float) -> None:
        self._due = time.monotonic() + delay
        self._timer = self._host.set_timer(delay, self._tick)

    def _tick(self) -> None:
        """Catch up with the stream, then schedule the next look.

        A screen update costs a layout and a repaint of what is on screen. How late
        this tick fired is how long the loop was busy with the last one; the next look
        waits at least twice that, so typing stays responsive on a busy machine (at
        most ``STREAM_FPS`` a second).
        """
        late = max(0.0, time.monotonic() - self._due)
        self._frame_cost = 0.7 * self._frame_cost + 0.3 * late
        self.catch_up()
        if self._reply is not None:
            self._schedule(min(SLOWEST_UPDATE_S, max(1 / STREAM_FPS, 2 * self._frame_cost)))
