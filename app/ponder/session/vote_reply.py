"""A voted reply: N candidates of one prompt, the most common final answer wins.

:class:`VoteReply` is a :class:`~ponder.session.reply.Reply` whose events are
``Started``, then each candidate's :class:`~ponder.events.CandidateDelta` as it
streams and its :class:`~ponder.events.CandidateFinished` when it ends, then
:class:`~ponder.events.Voted` (the tally) and the winner's ``Finished`` carrying it.
Each candidate's final answer is extracted and the tally taken by
:mod:`ponder.votes`; ties go to the candidate that finished first. Once voted,
:attr:`Reply.live` (and so ``answer`` and ``reasoning``) is the winner's.

The history keeps one assistant message, the winner's text, with the tally in its
params, and every candidate in its own row (:class:`CandidateWriter`), written a
quarter second at a time as they stream: Ctrl-C keeps every partial candidate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace

from ponder import votes
from ponder.events import (
    AnswerDelta,
    CandidateDelta,
    CandidateFinished,
    CandidateResult,
    ChatEvent,
    Finished,
    ReasoningDelta,
    Started,
    Timings,
    Usage,
    Voted,
)
from ponder.history import History
from ponder.session.candidates import CandidatesSource
from ponder.session.reply import HistoryWriter, LiveText, Reply, ReplySource


class VoteReply(Reply):
    """A reply decided by a vote among ``len(lives)`` candidates."""

    def __init__(
        self,
        *,
        model: str,
        source: CandidatesSource,
        lives: Sequence[LiveText],
        seeds: Sequence[int],
        writers: VoteWriters | None,
        chat_id: int | None,
        message_id: int | None,
        on_done: Callable[[], None],
    ) -> None:
        self.candidates = list(lives)
        self.voted: Voted | None = None
        self._candidates_source = source
        self._seeds = list(seeds)
        self._writers = writers
        self._started_at = time.monotonic()
        super().__init__(
            model=model,
            source=None,
            writer=None,
            chat_id=chat_id,
            message_id=message_id,
            live=LiveText(),
            on_done=on_done,
        )

    def close(self) -> None:
        if not self._begun and not self._done and self._writers is not None:
            self._writers.abandon()
        super().close()

    def _stream(
        self, source: ReplySource | None, writer: HistoryWriter | None
    ) -> Generator[ChatEvent, None, None]:
        cands, lives, writers = self._candidates_source, self.candidates, self._writers
        results: dict[int, CandidateResult] = {}
        order: list[int] = []
        all_ended = False
        end = Finished("interrupted")
        try:
            yield Started(model=self.model, chat_id=self.chat_id)
            for index, delta in cands.steps(lives):
                if delta is None:
                    result = self._end(index, True, results, order)
                    yield CandidateFinished(result)
                    continue
                lives[index].add(delta)
                if writers is not None:
                    writers.add(index, delta)
                yield CandidateDelta(index, delta)
            all_ended = True
        finally:
            try:
                cands.close()
                for index in range(len(lives)):
                    if index not in results:  # cut short: kept as it is, interrupted
                        self._end(index, False, results, order)
                voted = self._vote(results, order)
                self.voted, self.live = voted, lives[voted.winner_index]
                end = self._finished(voted, all_ended)
                if writers is not None:
                    writers.finish(voted, end, lives[voted.winner_index])
            finally:
                self.finished = end
                self._release()
        yield voted
        yield end

    def _end(
        self, index: int, finished: bool, results: dict[int, CandidateResult], order: list[int]
    ) -> CandidateResult:
        live = self.candidates[index]
        live.ended = True
        outcome = self._candidates_source.outcome(index, finished, live)
        answer = live.answer
        result = CandidateResult(
            index=index,
            reasoning=live.reasoning,
            answer=answer,
            extracted=votes.extract_answer(answer),
            finished=outcome,
            seed=self._seeds[index],
        )
        results[index] = result
        order.append(index)
        if self._writers is not None:
            self._writers.end(result)
        return result

    def _vote(self, results: dict[int, CandidateResult], order: list[int]) -> Voted:
        ordered = tuple(results[i] for i in range(len(self.candidates)))
        tally = votes.tally([r.extracted for r in ordered], order)
        winner = tally.winner_index if tally.winner_index is not None else order[0]
        return Voted(
            n=tally.n,
            winner=tally.winner,
            winner_index=winner,
            tally=tuple(tally.counts.items()),
            agree=tally.agree,
            summary=tally.describe(),
            candidates=ordered,
        )

    def _finished(self, voted: Voted, all_ended: bool) -> Finished:
        """The winner's own ``Finished``, timed over the whole vote and carrying it."""
        own = voted.candidates[voted.winner_index].finished
        timings = replace(own.timings, total_s=time.monotonic() - self._started_at)
        reason = own.finish_reason if all_ended else "interrupted"
        return replace(own, finish_reason=reason, timings=timings, votes=voted)


class CandidateWriter(HistoryWriter):
    """One candidate's row, batched like a reply's: a write a quarter second."""

    def __init__(self, history: History, candidate_id: int, *, chat_id: int | None) -> None:
        super().__init__(history, candidate_id, chat_id=chat_id)
        self.extracted: str | None = None

    def _append(self, reasoning: str, answer: str) -> None:
        self._history.append_candidate(self._id, reasoning=reasoning, answer=answer)

    def _finish(self, status: str, reason: str, usage: Usage, timings: Timings) -> None:
        self._history.finish_candidate(
            self._id,
            status=status,  # type: ignore[arg-type]
            finish_reason=reason,
            reasoning_tokens=usage.reasoning_tokens,
            answer_tokens=usage.answer_tokens,
            extracted=self.extracted,
            timings=dict(timings.as_dict()),
        )


class VoteWriters:
    """The history rows of a voted reply: each candidate's, then the winner as the reply."""

    def __init__(self, history: History, message_id: int, n: int, chat_id: int | None) -> None:
        self._history = history
        self._message_id = message_id
        self._chat_id = chat_id
        ids = [history.start_candidate(message_id, i) for i in range(n)]
        self._candidates = [CandidateWriter(history, c, chat_id=chat_id) for c in ids]
        self._ended: set[int] = set()

    def add(self, index: int, delta: ReasoningDelta | AnswerDelta) -> None:
        self._candidates[index].add(delta)

    def end(self, result: CandidateResult) -> None:
        writer = self._candidates[result.index]
        writer.extracted = result.extracted
        f = result.finished
        writer.finish(f.finish_reason, f.usage, f.timings)
        self._ended.add(result.index)

    def finish(self, voted: Voted, end: Finished, winner: LiveText) -> None:
        reply = HistoryWriter(self._history, self._message_id, chat_id=self._chat_id)
        reply.add(ReasoningDelta(winner.reasoning))
        reply.add(AnswerDelta(winner.answer))
        self._history.set_votes(self._message_id, votes_record(voted))
        reply.finish(end.finish_reason, end.usage, end.timings)

    def abandon(self) -> None:
        """Never read: every row is closed as interrupted."""
        for index, writer in enumerate(self._candidates):
            if index not in self._ended:
                writer.finish("interrupted", Usage(), Timings())
        HistoryWriter(self._history, self._message_id, chat_id=self._chat_id).finish(
            "interrupted", Usage(), Timings()
        )


def votes_record(voted: Voted) -> dict[str, object]:
    """What the history keeps of a vote with the reply (the candidates have rows)."""
    return {
        "n": voted.n,
        "winner": voted.winner,
        "winner_index": voted.winner_index,
        "tally": dict(voted.tally),
        "summary": voted.summary,
    }
