"""How ``ponder run`` writes a reply: text, one JSON object, or JSON lines.

* text: the answer on stdout; the reasoning on stderr (dimmed on a terminal unless
  ``NO_COLOR``), hidden, or inline in ``<think>`` tags on stdout;
* ``--json``: one object at the end (model, chat id, answer, reasoning, finish);
* ``--jsonl``: one event per line as it streams (start, reasoning, answer, finish).

A voted reply (``--votes N``) prints the winner's answer on stdout and the tally on
stderr, after each candidate's thinking (as it ends, under a header line) when the
thinking goes to stderr; ``--json`` adds ``votes`` with every candidate, and
``--jsonl`` tags each candidate's events with ``"candidate": i`` and ends with a
``votes`` event before ``finish``.

These are an API for scripts: the shapes here are the documented ones
(docs/headless.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from ponder.events import (
    AnswerDelta,
    CandidateDelta,
    CandidateFinished,
    CandidateResult,
    ChatEvent,
    Finished,
    ReasoningDelta,
    Started,
    Voted,
)

if TYPE_CHECKING:
    from ponder.session import Reply

DIM, RESET = "\x1b[2m", "\x1b[0m"
REASONING_MODES = ("stderr", "hide", "inline")


def write_text(events: Iterator[ChatEvent], mode: str, out: TextIO, err: TextIO) -> Finished:
    dim = err.isatty() and "NO_COLOR" not in os.environ
    answer_tail = ""
    reasoning_open = False  # inline mode: inside <think> on stdout
    reasoning_on_stderr = False  # stderr mode: thinking was shown and needs a line break
    finished: Finished | None = None
    for event in events:
        match event:
            case ReasoningDelta(text=text):
                if mode == "stderr":
                    err.write(f"{DIM}{text}{RESET}" if dim else text)
                    err.flush()
                    reasoning_on_stderr = True
                elif mode == "inline":
                    if not reasoning_open:
                        out.write("<think>\n")
                        reasoning_open = True
                    out.write(text)
                    out.flush()
            case AnswerDelta(text=text):
                if reasoning_open:
                    out.write("\n</think>\n\n")
                    reasoning_open = False
                elif reasoning_on_stderr:
                    err.write("\n")
                    err.flush()
                    reasoning_on_stderr = False
                out.write(text)
                out.flush()
                answer_tail = text or answer_tail
            case Finished():
                finished = event
            case CandidateFinished(result=result):
                if mode == "stderr":
                    _candidate_on_stderr(result, err, dim=dim)
            case Voted():
                _winner(event, mode, out, err)
                answer_tail = event.candidates[event.winner_index].answer or answer_tail
            case Started() | CandidateDelta():
                pass
    if reasoning_open:
        out.write("\n</think>\n")
    if reasoning_on_stderr:
        err.write("\n")
    if answer_tail and not answer_tail.endswith("\n"):
        out.write("\n")
    out.flush()
    assert finished is not None
    return finished


def _candidate_on_stderr(result: CandidateResult, err: TextIO, *, dim: bool) -> None:
    found = result.extracted if result.extracted is not None else "no answer"
    err.write(f"── candidate {result.index + 1} ({result.finished.finish_reason}): {found} ──\n")
    if result.reasoning:
        text = result.reasoning.rstrip("\n")
        err.write((f"{DIM}{text}{RESET}" if dim else text) + "\n")
    err.flush()


def _winner(voted: Voted, mode: str, out: TextIO, err: TextIO) -> None:
    """The vote is in: the tally on stderr, the winner's answer on stdout."""
    err.write(voted.summary + "\n")
    err.flush()
    winner = voted.candidates[voted.winner_index]
    if mode == "inline" and winner.reasoning:
        out.write(f"<think>\n{winner.reasoning}\n</think>\n\n")
    out.write(winner.answer)
    out.flush()


def event_json(event: ChatEvent) -> dict[str, Any]:
    match event:
        case Started(model=model, chat_id=chat_id):
            return {"type": "start", "model": model, "chat_id": chat_id}
        case ReasoningDelta(text=text):
            return {"type": "reasoning", "text": text}
        case AnswerDelta(text=text):
            return {"type": "answer", "text": text}
        case Finished():
            return {"type": "finish", **finish_fields(event)}
        case CandidateDelta(index=index, delta=delta):
            return {**event_json(delta), "candidate": index}
        case CandidateFinished(result=result):
            return {"type": "candidate_finish", **candidate_json(result)}
        case Voted():
            return {"type": "votes", **votes_json(event, candidates=False)}
    raise AssertionError(f"unknown event {event!r}")


def candidate_json(result: CandidateResult) -> dict[str, Any]:
    usage = result.finished.usage
    return {
        "candidate": result.index,
        "seed": result.seed,
        "answer": result.answer,
        "extracted": result.extracted,
        "reasoning": result.reasoning,
        "finish_reason": result.finished.finish_reason,
        "reasoning_tokens": usage.reasoning_tokens,
        "answer_tokens": usage.answer_tokens,
    }


def votes_json(voted: Voted, *, candidates: bool = True) -> dict[str, Any]:
    document: dict[str, Any] = {
        "n": voted.n,
        "winner": voted.winner,
        "winner_candidate": voted.winner_index,
        "tally": dict(voted.tally),
        "summary": voted.summary,
    }
    if candidates:
        document["candidates"] = [candidate_json(c) for c in voted.candidates]
    return document


def finish_fields(finished: Finished) -> dict[str, Any]:
    u, t = finished.usage, finished.timings
    return {
        "finish_reason": finished.finish_reason,
        "usage": {
            "prompt_tokens": u.prompt_tokens,
            "reasoning_tokens": u.reasoning_tokens,
            "answer_tokens": u.answer_tokens,
            "completion_tokens": u.completion_tokens,
            "cached_tokens": u.cached_tokens,
        },
        "timings": t.as_dict(),
        # Remote engines: "server" when the server reported them, "client" when counted here.
        "timings_source": finished.timings_source,
        "usage_source": finished.usage_source,
        # The thinking budget (null: none) and whether it closed the thinking.
        "think_budget": (
            None
            if finished.think_budget is None
            else {"tokens": finished.think_budget, "hit": finished.budget_hit}
        ),
        # --votes N: the tally and every candidate (null for a plain reply).
        "votes": None if finished.votes is None else votes_json(finished.votes),
    }


def write_jsonl(events: Iterator[ChatEvent], out: TextIO) -> Finished:
    finished: Finished | None = None
    for event in events:
        out.write(json.dumps(event_json(event), ensure_ascii=False) + "\n")
        out.flush()
        if isinstance(event, Finished):
            finished = event
    assert finished is not None
    return finished


def write_json(reply: Reply, finished: Finished, out: TextIO) -> None:
    document = {
        "model": reply.model,
        "chat_id": reply.chat_id,
        "answer": reply.answer,
        "reasoning": reply.reasoning,
        **finish_fields(finished),
    }
    print(json.dumps(document, ensure_ascii=False, indent=2), file=out)
