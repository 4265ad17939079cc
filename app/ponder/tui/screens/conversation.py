"""The chat screen's conversation: the turns of one chat, and the reply being generated.

It shows a saved chat as it was, and sends a prompt: the turn appears, and the
reply is generated in a thread worker that iterates the
:class:`~ponder.session.Reply` and posts when it starts, finishes or fails (the
messages bubble up to the chat screen, which calls back here). While the reply
streams a :class:`~ponder.tui.widgets.stream.StreamFollower` shows its live text.
When it ends the reply is completed, marked failed, or taken off again with its
prompt when nothing was generated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from textual import work
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget

from ponder.events import Finished
from ponder.session import LoadedModel, Reply, ReplyRequest
from ponder.session import Message as SavedMessage
from ponder.tui.failures import reported
from ponder.tui.messages import ReplyFailed, ReplyFinished, ReplyStarted
from ponder.tui.widgets.reply import ReplyView, UserTurn
from ponder.tui.widgets.stream import StreamFollower


class Conversation(VerticalScroll):
    """User turns and replies; ``live`` is the reply being generated, if any."""

    class PhaseChanged(Message):
        """The live reply turned from thinking to answering."""

    def __init__(
        self, *, on_frame: Callable[[], object] | None = None, id: str | None = None
    ) -> None:
        """``on_frame`` is called each time the live reply's new text has been shown."""
        super().__init__(id=id)
        self.live: ReplyView | None = None
        self._cancel: threading.Event | None = None  # set: stop after the current token
        self._wrap_up: threading.Event | None = None  # set: close the thinking, answer
        self._prompt = ""
        self._follower = StreamFollower(
            self, lambda: self.post_message(self.PhaseChanged()), on_frame
        )

    def on_unmount(self) -> None:
        # Quitting mid-reply: the worker ends after its current token and the session
        # records the partial reply as interrupted, so the app exits promptly.
        if self._cancel is not None:
            self._cancel.set()

    async def show_saved(self, messages: Sequence[SavedMessage]) -> None:
        """Replace what is shown with a saved chat's messages, scrolled to the end."""
        await self.remove_children()
        widgets: list[Widget] = [
            UserTurn(m.content) if m.role == "user" else ReplyView.from_saved(m) for m in messages
        ]
        await self.mount_all(widgets)
        self.scroll_end(animate=False)

    # -- one reply ---------------------------------------------------------------------

    async def send(self, model: LoadedModel, request: ReplyRequest) -> None:
        """Show the prompt with an empty live reply, and start generating it."""
        budget = request.budget_under(request.settings)
        reply = ReplyView(
            live=True, budget=budget, votes=request.votes if request.votes > 1 else None
        )
        await self.mount_all([UserTurn(request.prompt), reply])
        self.anchor()
        self.live, self._prompt = reply, request.prompt
        self._cancel, self._wrap_up = threading.Event(), threading.Event()
        self._generate(model, request, self._cancel, self._wrap_up)

    @work(thread=True, exclusive=True, group="reply", exit_on_error=False)
    def _generate(
        self,
        model: LoadedModel,
        request: ReplyRequest,
        cancel: threading.Event,
        wrap_up: threading.Event,
    ) -> None:
        with reported(self, lambda error: self.post_message(ReplyFailed(error))):
            reply = model.reply(request, cancel=cancel, wrap_up=wrap_up)
            self.post_message(ReplyStarted(reply))
            for event in reply:
                if isinstance(event, Finished):
                    self.post_message(ReplyFinished(event))

    def follow(self, reply: Reply) -> None:
        """The reply has started: its text comes from ``reply`` while it streams."""
        if self.live is not None:
            self._follower.follow(reply, self.live)

    async def finish(self, finished: Finished) -> None:
        """The reply ended: show the rest of it and what it cost."""
        self._follower.end()
        if self.live is not None:
            self.live.finish(finished)
        self.live = self._cancel = self._wrap_up = None

    async def fail(self, why: str) -> str | None:
        """The reply failed: what it generated stays, marked. A reply with nothing in it
        is taken off with its prompt, and the prompt is returned (to be sent again)."""
        self._follower.end()
        reply, self.live = self.live, None
        self._cancel = self._wrap_up = None
        if reply is None:
            return None
        if reply.answer_text or reply.reasoning_text:
            reply.mark_failed(f"■ failed: {why}")
            return None
        await self.remove_exchange(reply)
        return self._prompt

    def stop(self) -> None:
        """Stop the reply after its current token (it is kept, marked interrupted)."""
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()

    def wrap_up(self) -> bool:
        """Ask the model to close its thinking and answer; False once it is answering."""
        if self.live is None or self._wrap_up is None or not self.live.thinking:
            return False
        self._wrap_up.set()
        return True

    def toggle_thinking(self) -> None:
        """Fold every reasoning panel if any is open, else unfold them all."""
        replies = [r for r in self.query(ReplyView) if r.reasoning_text]
        if not replies:
            return
        open_ = not any(r.reasoning_open for r in replies)
        for reply in replies:
            reply.set_reasoning_open(open_)

    async def remove_exchange(self, reply: ReplyView) -> None:
        """Take ``reply`` and the last user turn off the screen."""
        turns = list(self.query(UserTurn))
        await reply.remove()
        if turns:
            await turns[-1].remove()
