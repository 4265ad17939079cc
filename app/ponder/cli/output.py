"""How ``ponder run`` writes a reply: text, one JSON object, or JSON lines.

* text: the answer on stdout; the reasoning on stderr (dimmed on a terminal unless
  ``NO_COLOR``), hidden, or inline in ``<think>`` tags on stdout;
* ``--json``: one object at the end (model, chat id, answer, reasoning, finish);
* ``--jsonl``: one event per line as it streams (start, reasoning, answer, finish).

These are an API for scripts: the shapes here are the documented ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from ponder.events import AnswerDelta, ChatEvent, Finished, ReasoningDelta, Started

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
            case Started():
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
    raise AssertionError(f"unknown event {event!r}")


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
