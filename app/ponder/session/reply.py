"""One reply as it streams: typed events, a live view of the text, and its history rows.

A :class:`Reply` is an iterator of :mod:`ponder.events` (``Started``, reasoning and
answer deltas, ``Finished``) that a front end drains in one thread, while another
thread may look at :attr:`Reply.live` to see what is new since its last look (the
chat UI does, ten times a second). While the reply streams its reasoning is split
from the answer, tokens are counted per phase, and both texts are written to the
history every quarter second, so a killed process loses at most that moment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from ponder.events import AnswerDelta, ChatEvent, Finished, ReasoningDelta, Started, Timings, Usage
from ponder.history import History, HistoryFullError

HISTORY_FLUSH_S = 0.25


@dataclass(frozen=True, slots=True)
class LiveUpdate:
    """What arrived since the last look, and the counts so far."""

    reasoning: str
    answer: str
    reasoning_tokens: int
    answer_tokens: int
    prompt_tokens: int | None = None  # the prompt's tokens, once the engine has read it


class LiveText:
    """The text of a reply so far, appended by the generating thread and read by others.

    The writer appends; :meth:`look` hands a reader what is new since its own last
    look. A lock keeps the two consistent (an append is a few hundred nanoseconds).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reasoning: list[str] = []
        self._answer: list[str] = []
        self._seen = (0, 0)
        self.reasoning_tokens = 0
        self.answer_tokens = 0
        self.wrapped_up = False  # something other than the model closed the thinking
        self.budget_hit = False  # ... and it was the thinking budget
        self.ended = False  # a voted reply's candidate: it has ended
        # The prompt's tokens, where the source knows them before the end (a local
        # engine, once it has read the prompt); a server says so only at the end.
        self.prompt_tokens: int | None = None

    def add(self, delta: ReasoningDelta | AnswerDelta) -> None:
        with self._lock:
            (self._reasoning if isinstance(delta, ReasoningDelta) else self._answer).append(
                delta.text
            )

    def count(self, *, reasoning: bool) -> None:
        if reasoning:
            self.reasoning_tokens += 1
        else:
            self.answer_tokens += 1

    def look(self) -> LiveUpdate:
        with self._lock:
            seen_r, seen_a = self._seen
            n_r, n_a = len(self._reasoning), len(self._answer)
            reasoning = "".join(self._reasoning[seen_r:n_r])
            answer = "".join(self._answer[seen_a:n_a])
            self._seen = (n_r, n_a)
        return LiveUpdate(
            reasoning, answer, self.reasoning_tokens, self.answer_tokens, self.prompt_tokens
        )

    @property
    def reasoning(self) -> str:
        with self._lock:
            return "".join(self._reasoning)

    @property
    def answer(self) -> str:
        with self._lock:
            return "".join(self._answer)


class ReplySource(Protocol):
    """Where a reply's deltas come from: a local engine's tokens or a server's stream.

    :class:`Reply` does the rest the same for both: the live view, the history rows,
    the ``Started`` / ``Finished`` events and releasing the model.
    """

    def deltas(self, live: LiveText) -> Iterator[ReasoningDelta | AnswerDelta]:
        """The reply, split; counts tokens into ``live`` as they come."""
        ...

    def outcome(self, finished: bool, live: LiveText) -> Finished:
        """How it ended: ``finished`` is False when the deltas stopped early."""
        ...

    def close(self) -> None: ...


class Reply(Iterator[ChatEvent]):
    """One reply: iterate it for its events; :attr:`live` for its text from elsewhere."""

    def __init__(
        self,
        *,
        model: str,
        source: ReplySource | None,
        writer: HistoryWriter | None,
        chat_id: int | None,
        message_id: int | None,
        live: LiveText,
        on_done: Callable[[], None],
    ) -> None:
        self.model = model
        self.chat_id = chat_id
        self.message_id = message_id
        self.live = live
        self.finished: Finished | None = None
        self._on_done = on_done
        self._done = False
        self._begun = False
        self._writer = writer
        self._events: Generator[ChatEvent, None, None] = self._stream(source, writer)

    def __iter__(self) -> Reply:
        return self

    def __next__(self) -> ChatEvent:
        self._begun = True
        return next(self._events)

    def close(self) -> None:
        """End the reply now (a closed pipe, a second Ctrl-C): what streamed is recorded,
        marked interrupted."""
        if not self._begun and not self._done and self._writer is not None:
            # Never read: the stream's own clean-up never ran, so record the end here.
            self._writer.finish("interrupted", Usage(), Timings())
        self._events.close()
        self._release()

    def drain(self) -> Finished:
        """Read the reply to its end; its ``Finished`` event."""
        for _ in self:
            pass
        assert self.finished is not None, "a reply always ends with Finished"
        return self.finished

    @property
    def reasoning(self) -> str:
        return self.live.reasoning

    @property
    def answer(self) -> str:
        return self.live.answer

    def _release(self) -> None:
        if not self._done:
            self._done = True
            self._on_done()

    def _stream(
        self, source: ReplySource | None, writer: HistoryWriter | None
    ) -> Generator[ChatEvent, None, None]:
        """The events; a subclass with a source of another kind (a voted reply) passes
        None and streams its own."""
        assert source is not None
        live = self.live
        finished = False
        try:
            yield Started(model=self.model, chat_id=self.chat_id)
            for delta in source.deltas(live):
                live.add(delta)
                if writer is not None:
                    writer.add(delta)
                yield delta
            finished = True
        finally:
            end = Finished("interrupted")
            try:
                source.close()
                end = source.outcome(finished, live)
                if writer is not None:
                    writer.finish(end.finish_reason, end.usage, end.timings)
            finally:
                self.finished = end
                self._release()
        yield self.finished


class HistoryWriter:
    """Batches deltas into the history: one write per quarter second, not per token.

    When the disk fills, what was written stays (each write is its own commit) and the
    writer stops: the reply ends with one line saying so, and nothing more is tried, so
    the clean-up's own write cannot fail a second time over the first failure."""

    def __init__(self, history: History, message_id: int, *, chat_id: int | None = None) -> None:
        self._history = history
        self._id = message_id
        self._chat_id = chat_id
        self._reasoning: list[str] = []
        self._answer: list[str] = []
        self._last = time.monotonic()
        self._failed = False

    def add(self, delta: ReasoningDelta | AnswerDelta) -> None:
        (self._reasoning if isinstance(delta, ReasoningDelta) else self._answer).append(delta.text)
        now = time.monotonic()
        if now - self._last >= HISTORY_FLUSH_S:
            self.flush()
            self._last = now

    def flush(self) -> None:
        if self._failed:
            return
        if self._reasoning or self._answer:
            with self._stop_when_full():
                self._append("".join(self._reasoning), "".join(self._answer))
            self._reasoning.clear()
            self._answer.clear()

    def finish(self, reason: str, usage: Usage, timings: Timings) -> None:
        self.flush()
        if self._failed:
            return
        status = {"stop": "complete", "length": "length"}.get(reason, "interrupted")
        with self._stop_when_full():
            self._finish(status, reason, usage, timings)

    @contextmanager
    def _stop_when_full(self) -> Iterator[None]:
        try:
            yield
        except HistoryFullError as full:
            self._failed = True
            where = f" in chat {self._chat_id}" if self._chat_id is not None else ""
            show = f"`ponder chats show {self._chat_id}`" if self._chat_id is not None else "it"
            raise HistoryFullError(
                "no room to save the reply (the disk is full, or a quota or a file-size"
                f" limit is reached): it stopped, and what it had written is kept{where}",
                hint=f"free some space; {show} shows the reply so far",
            ) from full

    def _append(self, reasoning: str, answer: str) -> None:
        self._history.append_reply(self._id, reasoning=reasoning, answer=answer)

    def _finish(self, status: str, reason: str, usage: Usage, timings: Timings) -> None:
        self._history.finish_reply(
            self._id,
            status=status,  # type: ignore[arg-type]
            finish_reason=reason,
            prompt_tokens=usage.prompt_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            answer_tokens=usage.answer_tokens,
            timings=dict(timings.as_dict()),
        )
