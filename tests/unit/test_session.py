"""Session controls on the real engine: wrap up, live token counts, kept reasoning."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.catalog import load_catalog
from ponder.config import Settings
from ponder.events import AnswerDelta, Finished, ReasoningDelta
from ponder.history import History
from ponder.paths import default_paths
from ponder.prompt import Turn
from ponder.session import (
    WRAP_UP_TEXT,
    ModelOptions,
    ReplyRequest,
    Session,
    chat_turns,
)

pytestmark = pytest.mark.real_model


@pytest.fixture()
def session(ponder_home: Path) -> Iterator[Session]:
    paths = default_paths()
    with History.open(paths.history_db) as history:
        made = Session(settings=Settings(), paths=paths, catalog=load_catalog(), history=history)
        yield made
        made.close()


def test_wrap_up_closes_the_thinking_and_the_model_answers(
    session: Session, r1_gemma: Path
) -> None:
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=2048))
    wrap_up = threading.Event()
    greedy = {"temperature": 0.0, "max_tokens": 60}
    reasoning_seen = 0
    events = []
    reply = model.reply(
        ReplyRequest(prompt="Why is the sky blue?", overrides=greedy), wrap_up=wrap_up
    )
    state = reply.live
    for event in reply:
        events.append(event)
        if isinstance(event, ReasoningDelta):
            reasoning_seen += 1
            assert state.reasoning_tokens >= reasoning_seen  # counted as it streams
            if reasoning_seen == 10:
                wrap_up.set()
    finished = events[-1]
    assert isinstance(finished, Finished)
    answer = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    assert state.wrapped_up and answer.strip(), events
    assert "</think>" not in state.reasoning + answer
    # The injected tag is not the model's: the counts add up to max_tokens without it.
    assert finished.finish_reason == "length"
    assert finished.usage.completion_tokens == 60
    assert finished.usage.reasoning_tokens == state.reasoning_tokens - 1 >= 10
    assert finished.usage.answer_tokens == state.answer_tokens >= 1
    saved = session.history.get_chat(reply.chat_id).messages[-1]  # type: ignore[union-attr, arg-type]
    assert saved.content == answer and saved.reasoning == state.reasoning
    assert WRAP_UP_TEXT.strip() == "</think>"


def test_wrap_up_after_the_thinking_ended_does_nothing(session: Session, gemma_path: Path) -> None:
    # No template: the stream starts in the answer.
    model = session.open_model(str(gemma_path), ModelOptions(n_ctx=2048))
    wrap_up = threading.Event()
    wrap_up.set()
    greedy = {"temperature": 0.0, "max_tokens": 8}
    reply = model.reply(ReplyRequest(prompt="Hello", overrides=greedy), wrap_up=wrap_up)
    events = list(reply)
    assert not reply.live.wrapped_up
    assert not any(isinstance(e, ReasoningDelta) for e in events)


def test_kept_reasoning_goes_back_to_the_model(session: Session, gemma_path: Path) -> None:
    history = session.history
    assert history is not None
    chat_id = history.create_chat(title="t", model="m")
    history.add_user_message(chat_id, "q1")
    reply = history.start_reply(chat_id, model="m", params={})
    history.append_reply(reply, reasoning="secret steps", answer="a1")
    history.finish_reply(
        reply,
        status="complete",
        finish_reason="stop",
        prompt_tokens=1,
        reasoning_tokens=1,
        answer_tokens=1,
        timings={},
    )
    dropped, _, _ = chat_turns(history, chat_id)
    kept, _, _ = chat_turns(history, chat_id, keep_reasoning=True)
    assert dropped[1] == Turn("assistant", "a1")
    assert kept[1] == Turn("assistant", "<think>\nsecret steps\n</think>\n\na1")
    model = session.open_model(str(gemma_path), ModelOptions(n_ctx=2048))
    shown = model.render([*kept, Turn("user", "q2")], keep_reasoning=True)
    hidden = model.render([*kept, Turn("user", "q2")])
    assert "secret steps" in shown.text and "secret steps" not in hidden.text
