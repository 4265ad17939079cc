"""Where a voted reply's candidates come from: one batch, one after another, or threads.

A :class:`CandidatesSource` is to a voted reply what a
:class:`~ponder.session.reply.ReplySource` is to a plain one: it yields each
candidate's split deltas, tagged with the candidate's index, and says how each one
ended. Three ways to get them:

* :class:`BatchedCandidates`: the llama.cpp engine decodes every candidate in one
  context (:meth:`~ponder.engine.Batches.generate_many`): the prompt is read once and
  each step is one batch of all live candidates, so N candidates cost far less than N
  replies. Each candidate's tokens go through its own
  :class:`~ponder.session.local_source.LocalSource` (splitter, counts, clock).
* :class:`SequentialCandidates`: one reply after another on an engine that decodes
  one sequence at a time (the tests' scripted engine).
* :class:`ParallelCandidates`: one request per candidate, in threads, for a server
  (which batches them itself when it has the slots: llama-server's ``--parallel``,
  vLLM and SGLang always). Why threads rather than asyncio: the remote engine's
  client is synchronous, and a thread per candidate (at most 16) is the least code.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from ponder.events import AnswerDelta, Finished, ReasoningDelta
from ponder.session.local_source import LocalSource
from ponder.session.reply import LiveText, ReplySource

Delta = ReasoningDelta | AnswerDelta
Step = tuple[int, Delta | None]  # (candidate, a delta), or (candidate, None): it ended
_Queued = queue.Queue[tuple[int, Delta | BaseException | None]]


class CandidatesSource(Protocol):
    def steps(self, lives: Sequence[LiveText]) -> Iterator[Step]:
        """Every candidate's deltas, counted into ``lives[i]``, and each one's end."""
        ...

    def outcome(self, index: int, finished: bool, live: LiveText) -> Finished:
        """How candidate ``index`` ended: ``finished`` is False when it was cut short."""
        ...

    def close(self) -> None: ...


class BatchedCandidates:
    """All candidates in one context: ``generation`` is the engine's
    ``generate_many``, ``sources[i]`` splits and counts candidate i's tokens."""

    def __init__(
        self, sources: Sequence[LocalSource], generation: Iterator[tuple[int, str | None]]
    ) -> None:
        self._sources = list(sources)
        self._generation = generation

    def steps(self, lives: Sequence[LiveText]) -> Iterator[Step]:
        for index, text in self._generation:
            source = self._sources[index]
            if text is None:
                for delta in source.flush():
                    yield index, delta
                yield index, None
            else:
                for delta in source.feed(text, lives[index]):
                    yield index, delta

    def outcome(self, index: int, finished: bool, live: LiveText) -> Finished:
        return self._sources[index].outcome(finished, live)

    def close(self) -> None:
        close = getattr(self._generation, "close", None)
        if close is not None:
            close()


class SequentialCandidates:
    """Candidate after candidate, each a plain reply source made when its turn comes."""

    def __init__(self, make: Callable[[int], ReplySource], n: int) -> None:
        self._make = make
        self._n = n
        self._sources: dict[int, ReplySource] = {}
        self._ended: set[int] = set()

    def steps(self, lives: Sequence[LiveText]) -> Iterator[Step]:
        for index in range(self._n):
            source = self._sources[index] = self._make(index)
            for delta in source.deltas(lives[index]):
                yield index, delta
            self._ended.add(index)
            yield index, None

    def outcome(self, index: int, finished: bool, live: LiveText) -> Finished:
        source = self._sources.get(index)
        if source is None:  # never started
            return Finished("interrupted")
        source.close()
        return source.outcome(finished and index in self._ended, live)

    def close(self) -> None:
        for source in self._sources.values():
            source.close()


class ParallelCandidates:
    """One source per candidate, each drained by its own thread into one queue.

    ``first`` is made before the reply starts (so a server's refusal records nothing);
    the others are made in their threads. A failure in any thread stops the rest and
    is raised where the steps are read."""

    def __init__(self, first: ReplySource, make: Callable[[int], ReplySource], n: int) -> None:
        self._make = make
        self._n = n
        self._sources: dict[int, ReplySource] = {0: first}
        self._ended: set[int] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def steps(self, lives: Sequence[LiveText]) -> Iterator[Step]:
        steps: _Queued = queue.Queue()
        for index in range(self._n):
            thread = threading.Thread(
                target=self._drain,
                args=(index, lives[index], steps),
                name=f"ponder-candidate-{index}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        ended = 0
        while ended < self._n:
            index, item = steps.get()
            if isinstance(item, BaseException):
                self._stop.set()
                raise item
            if item is None:
                ended += 1
                self._ended.add(index)
            yield index, item

    def _drain(self, index: int, live: LiveText, steps: _Queued) -> None:
        try:
            with self._lock:
                source = self._sources.get(index)
            if source is None:
                source = self._make(index)
                with self._lock:
                    self._sources[index] = source
            for delta in source.deltas(live):
                if self._stop.is_set():
                    return
                steps.put((index, delta))
            steps.put((index, None))
        except BaseException as exc:  # handed to the reading thread, which raises it
            if not self._stop.is_set():
                steps.put((index, exc))

    def outcome(self, index: int, finished: bool, live: LiveText) -> Finished:
        with self._lock:
            source = self._sources.get(index)
        if source is None:
            return Finished("interrupted")
        source.close()
        return source.outcome(finished and index in self._ended, live)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            sources = list(self._sources.values())
        for source in sources:
            source.close()
        for thread in self._threads:
            thread.join(timeout=10)
