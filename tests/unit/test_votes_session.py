"""Votes through the session on the real engine: N candidates in one context, a tally,
every candidate in the history, the winner as the reply.

The R1-templated Gemma starts inside thinking; a grammar lets each candidate think a
few words and then answer either ``\\boxed{4}`` or ``\\boxed{5}``, so at temperature 1
the candidates disagree and the tally has something to count.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.catalog import load_catalog
from ponder.config import Settings
from ponder.errors import UsageError
from ponder.events import CandidateDelta, CandidateFinished, Finished, Voted
from ponder.history import History
from ponder.paths import default_paths
from ponder.session import ModelOptions, ReplyRequest, Session
from ponder.session.vote_reply import VoteReply

pytestmark = pytest.mark.real_model

TWO_ANSWERS = (
    'root ::= [a-z ]{4,24} "</think>" "The answer is " ("\\\\boxed{4}" | "\\\\boxed{5}") "."\n'
)
HOT = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "seed": 7, "max_tokens": 64}


@pytest.fixture()
def session(ponder_home: Path) -> Iterator[Session]:
    paths = default_paths()
    with History.open(paths.history_db) as history:
        made = Session(settings=Settings(), paths=paths, catalog=load_catalog(), history=history)
        yield made
        made.close()


def ask(session: Session, model_path: Path, n: int, **extra: object) -> tuple[VoteReply, list]:
    model = session.open_model(str(model_path), ModelOptions(n_ctx=2048))
    request = ReplyRequest(
        prompt="Is it 4 or 5?",
        overrides=HOT,
        grammar=TWO_ANSWERS,
        votes=n,
        **extra,  # type: ignore[arg-type]
    )
    reply = model.reply(request)
    assert isinstance(reply, VoteReply)
    return reply, list(reply)


def test_the_majority_wins_and_every_candidate_is_saved(session: Session, r1_gemma: Path) -> None:
    reply, events = ask(session, r1_gemma, 6)
    finished = [e.result for e in events if isinstance(e, CandidateFinished)]
    voted = next(e for e in events if isinstance(e, Voted))
    end = events[-1]
    assert isinstance(end, Finished) and end.votes == voted
    assert sorted(r.index for r in finished) == list(range(6))
    extracted = [voted.candidates[i].extracted for i in range(6)]
    assert set(extracted) <= {"4", "5"} and None not in extracted
    counts = Counter(extracted)
    assert dict(voted.tally) == dict(counts) and voted.n == 6
    top = max(counts.values())
    assert voted.agree == top and counts[voted.winner] == top
    # The winner is the earliest finished among the candidates with the winning answer.
    order = [r.index for r in finished]
    assert voted.winner_index == next(i for i in order if extracted[i] == voted.winner)
    assert voted.summary.startswith(f"{top} of 6 agree: {voted.winner}")
    # Each candidate streamed its own text, and the reply is the winner's.
    streamed = {i: "" for i in range(6)}
    for event in events:
        if isinstance(event, CandidateDelta):
            streamed[event.index] += event.delta.text
    for result in voted.candidates:
        assert streamed[result.index] == result.reasoning + result.answer
    winner = voted.candidates[voted.winner_index]
    assert (reply.answer, reply.reasoning) == (winner.answer, winner.reasoning)
    assert winner.answer == f"The answer is \\boxed{{{voted.winner}}}."
    # The history: the reply row is the winner, and each candidate has a row.
    history = session.require_history()
    message = history.get_chat(reply.chat_id or 0).messages[-1]
    assert (message.content, message.reasoning) == (winner.answer, winner.reasoning)
    assert message.status == "complete"
    assert message.params["votes"]["winner"] == voted.winner  # type: ignore[index]
    rows = history.candidates(message.id)
    assert [r.index for r in rows] == list(range(6))
    for row, result in zip(rows, voted.candidates, strict=True):
        assert (row.content, row.reasoning, row.extracted) == (
            result.answer,
            result.reasoning,
            result.extracted,
        )
        assert row.status == "complete"


def test_a_seed_repeats_the_whole_vote(session: Session, r1_gemma: Path) -> None:
    """As a new process would: a fresh load, so the cache starts empty both times (where
    earlier runs left cells changes the CPU attention's sums in their last bits)."""
    _, first = ask(session, r1_gemma, 4)
    paths = default_paths()
    with History.open(paths.history_db) as history:
        other = Session(settings=Settings(), paths=paths, catalog=load_catalog(), history=history)
        try:
            _, again = ask(other, r1_gemma, 4)
        finally:
            other.close()
    one = next(e for e in first if isinstance(e, Voted))
    two = next(e for e in again if isinstance(e, Voted))
    assert [c.answer for c in one.candidates] == [c.answer for c in two.candidates]
    assert [c.seed for c in one.candidates] == [7, 8, 9, 10]


def test_stopping_keeps_every_partial_candidate(session: Session, r1_gemma: Path) -> None:
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=2048))
    cancel = threading.Event()
    reply = model.reply(
        ReplyRequest(prompt="Why is the sky blue?", overrides={"max_tokens": 200}, votes=3),
        cancel=cancel,
    )
    seen = 0
    for event in reply:
        if isinstance(event, CandidateDelta):
            seen += 1
            if seen == 12:
                cancel.set()
    assert reply.finished is not None and reply.finished.finish_reason == "interrupted"
    history = session.require_history()
    message = history.get_chat(reply.chat_id or 0).messages[-1]
    assert message.status == "interrupted"
    rows = history.candidates(message.id)
    assert len(rows) == 3 and all(r.status == "interrupted" for r in rows)
    assert sum(len(r.reasoning) for r in rows) > 0


def test_a_budget_applies_to_every_candidate(session: Session, r1_gemma: Path) -> None:
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=2048))
    reply = model.reply(
        ReplyRequest(
            prompt="Why is the sky blue?",
            overrides={"max_tokens": 30, "seed": 3},
            votes=3,
            think_budget=10,
        )
    )
    end = reply.drain()
    assert end.votes is not None
    for result in end.votes.candidates:
        assert result.finished.usage.reasoning_tokens == 10 and result.finished.budget_hit


def test_out_of_range_votes_are_refused_before_anything_runs(
    session: Session, r1_gemma: Path
) -> None:
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=2048))
    with pytest.raises(UsageError, match="17 votes"):
        model.reply(ReplyRequest(prompt="hi", votes=17))
    assert session.require_history().list_chats() == []
    assert not model.streaming
