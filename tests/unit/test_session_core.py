"""The session's use cases over the engine seam, with the scripted engine: one model at a
time, one reply at a time, the live view, per-chat settings, and a second engine kind."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ponder.catalog import load_catalog
from ponder.config import Settings
from ponder.errors import ModelLoadError, UsageError
from ponder.events import AnswerDelta, Finished, Planned, ReasoningDelta
from ponder.paths import default_paths
from ponder.session import ChatSettings, ModelOptions, ReplyRequest, RunRequest, Session
from support.scripted import R1_ANSWER, R1_REASONING, Script, loader


def _session(script: Script) -> Session:
    paths = default_paths()
    return Session(
        settings=Settings(),
        paths=paths,
        catalog=load_catalog(),
        history_path=paths.history_db,
        load_engine=loader(script),
    )


def test_a_reply_streams_events_and_a_live_view_of_its_text(
    ponder_home: Path, r1_gemma: Path
) -> None:
    session = _session(Script())
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    reply = model.reply(ReplyRequest(prompt="What is 17*23?"))
    looked: list[str] = []
    events = []
    for event in reply:
        events.append(event)
        if isinstance(event, AnswerDelta):
            looked.append(reply.live.look().answer)
    assert isinstance(events[-1], Finished) and events[-1].finish_reason == "stop"
    # What the live view handed out, look by look, adds up to the whole answer once.
    assert "".join(looked) + reply.live.look().answer == reply.answer
    assert reply.answer.strip() == R1_ANSWER.strip()
    assert reply.reasoning.strip() == R1_REASONING.strip()
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == reply.reasoning
    session.close()


def test_one_reply_at_a_time_per_model(ponder_home: Path, r1_gemma: Path) -> None:
    script = Script(hold_at=3)
    session = _session(script)
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    first = model.reply(ReplyRequest(prompt="one"))
    worker = threading.Thread(target=first.drain)
    worker.start()
    assert script.reached_hold.wait(10)
    with pytest.raises(UsageError, match="still streaming"):
        model.reply(ReplyRequest(prompt="two"))
    script.release()
    worker.join(10)
    assert first.finished is not None and first.finished.finish_reason == "stop"
    model.reply(ReplyRequest(prompt="three", save=False)).drain()  # free again
    session.close()


def test_opening_another_model_waits_for_the_reply_and_refuses_new_ones(
    ponder_home: Path, r1_gemma: Path, gemma_path: Path
) -> None:
    script = Script(hold_at=3)
    session = _session(script)
    old = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    streaming = old.reply(ReplyRequest(prompt="one"))
    drained = threading.Thread(target=streaming.drain)
    drained.start()
    assert script.reached_hold.wait(10)
    opened: list[object] = []
    opener = threading.Thread(
        target=lambda: opened.append(session.open_model(str(gemma_path), ModelOptions(n_ctx=4096)))
    )
    opener.start()
    time.sleep(0.3)
    assert not opened, "the new model must wait while a reply streams on the old one"
    with pytest.raises(ModelLoadError, match="being replaced"):
        old.reply(ReplyRequest(prompt="sneaked in"))
    script.release()
    drained.join(10)
    opener.join(10)
    assert opened and session.current is opened[0]
    assert old.engine.closed  # type: ignore[attr-defined]
    assert streaming.finished is not None and streaming.finished.finish_reason == "stop"
    session.close()


def test_the_same_model_and_settings_are_not_loaded_twice(
    ponder_home: Path, r1_gemma: Path
) -> None:
    session = _session(Script())
    planned: list[Planned] = []
    first = session.open_model(
        str(r1_gemma),
        ModelOptions(n_ctx=4096),
        on_event=lambda e: planned.append(e),  # type: ignore[arg-type]
    )
    again = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    other = session.open_model(str(r1_gemma), ModelOptions(n_ctx=2048))
    assert again is first and other is not first and first.engine.closed  # type: ignore[attr-defined]
    assert planned and "4,096" in planned[0].plan and planned[0].model == first.name
    session.close()


def test_continuing_a_chat_honours_its_settings_and_flags_win(
    ponder_home: Path, r1_gemma: Path
) -> None:
    session = _session(Script())
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    settings = ChatSettings(sampling={"temperature": 0.3, "max_tokens": 5}, n_ctx=2048)
    first = model.reply(ReplyRequest(prompt="start", settings=settings))
    first.drain()
    assert first.chat_id is not None
    history = session.require_history()
    assert history.get_chat(first.chat_id).settings == {
        "temperature": 0.3,
        "max_tokens": 5,
        "n_ctx": 2048,
    }
    # `ponder run -c`: the chat's own settings, with the context it asked for.
    cont = session.run(
        RunRequest(model=str(r1_gemma), reply=ReplyRequest(prompt="more"), continue_last=True)
    )
    finished = cont.drain()
    assert cont.chat_id == first.chat_id and finished.finish_reason == "length"
    assert session.current is not None and session.current.n_ctx == 2048
    saved = history.get_chat(first.chat_id).messages[-1]
    assert saved.params["temperature"] == 0.3 and saved.params["max_tokens"] == 5
    # A flag given on the command line wins over the chat's setting.
    flagged = session.run(
        RunRequest(
            model=str(r1_gemma),
            reply=ReplyRequest(
                prompt="again", chat_id=first.chat_id, overrides={"temperature": 0.9}
            ),
        )
    )
    flagged.drain()
    saved = history.get_chat(first.chat_id).messages[-1]
    assert saved.params["temperature"] == 0.9 and saved.params["max_tokens"] == 5
    session.close()


def test_a_reply_that_is_never_read_is_recorded_as_interrupted(
    ponder_home: Path, r1_gemma: Path
) -> None:
    session = _session(Script())
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    reply = model.reply(ReplyRequest(prompt="never read"))
    reply.close()
    assert reply.chat_id is not None
    saved = session.require_history().get_chat(reply.chat_id).messages[-1]
    assert saved.status == "interrupted"
    model.reply(ReplyRequest(prompt="the model is free again", save=False)).drain()
    session.close()
