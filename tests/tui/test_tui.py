"""The chat UI driven with Textual's Pilot: real Session, real SQLite, loopback Hub.

Most flows use the scripted engine (tests/support/scripted.py), which plays an R1 reply and
can be held at a token, so "stop while thinking" and "wrap up" are deterministic.
One flow runs the real llama.cpp engine on the Gemma GGUF with a <think> grammar.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ponder import hardware
from ponder.catalog import Resolved
from ponder.download import pending_pulls
from ponder.errors import ModelLoadError
from ponder.history import History
from ponder.paths import default_paths
from ponder.session import ChatSettings, ReplyRequest
from ponder.session import machine as session_machine
from ponder.tui.screens.chat import ChatScreen
from ponder.tui.screens.dialogs import ConfirmScreen, TextPromptScreen
from ponder.tui.screens.models import ModelsScreen
from ponder.tui.screens.welcome import WelcomeScreen
from ponder.tui.widgets.chat_list import ChatItem, ChatListView
from ponder.tui.widgets.prompt import PromptArea
from ponder.tui.widgets.reply import ReplyView, UserTurn
from ponder.tui.widgets.status import StatusLine
from support.fakehub import FakeHub
from support.machines import machine
from support.models import ANSWER, THINK_GRAMMAR, THOUGHT
from support.scripted import R1_ANSWER, R1_REASONING, Script
from support.tuikit import (
    R1_NAME,
    ask,
    chat_screen,
    make_app,
    notes,
    ready,
    saved_messages,
    wait_for,
)

SIZE = (100, 32)

pytestmark = pytest.mark.anyio


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


@pytest.fixture()
def r1_model(r1_gemma: Path, ponder_home: Path) -> Path:
    return r1_gemma


# -- sending and streaming --------------------------------------------------------------


async def test_a_reply_streams_thinking_then_folds_it_when_the_answer_starts(
    r1_model: Path,
) -> None:
    script = Script(hold_at=40)
    app = make_app(model_file=r1_model, script=script)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await ask(pilot, screen, "What is 17 × 23?")
        await wait_for(pilot, script.reached_hold.is_set)
        reply = screen.query_one(ReplyView)
        await wait_for(pilot, lambda: len(reply.reasoning_text) > 50)
        assert reply.thinking and reply.reasoning_open
        await pilot.pause(0.3)
        assert str(reply._panel.title).startswith("Thinking… ")
        assert "thinking" in str(screen.query_one(StatusLine).render())
        # The context fills as the reply streams: the prompt and the tokens so far.
        filled = script.prompts[-1] + reply.reasoning_tokens
        assert reply.context_tokens == filled and reply.reasoning_tokens >= 40
        await wait_for(
            pilot, lambda: f"ctx {filled:,}/" in str(screen.query_one(StatusLine).render())
        )
        assert reply.answer_text == ""
        prompt = screen.query_one(PromptArea)
        assert not prompt.cursor_blink  # a blink would be a repaint of its own
        assert gc.get_freeze_count() > 0  # the app's objects are out of the collector's way
        script.release()
        await wait_for(pilot, lambda: screen.live is None)
        assert prompt.cursor_blink
        assert not reply.reasoning_open
        assert re.fullmatch(r"Thought for \d+ s · [\d,]+ tokens", str(reply._panel.title))
        assert reply.answer_text == R1_ANSWER
        assert reply.reasoning_text.strip() == R1_REASONING.strip()
        status = str(screen.query_one(StatusLine).render())
        assert status.startswith(R1_NAME) and "ctx " in status and "tok/s" in status
        assert screen.chat_id is not None
        user, saved = saved_messages(screen.chat_id)
        assert user.content == "What is 17 × 23?"
        assert saved.content == R1_ANSWER and saved.status == "complete"
        assert saved.reasoning.strip() == R1_REASONING.strip()
        # The chat list is refilled after the reply's end is shown: wait for it.
        await wait_for(
            pilot, lambda: [i.title for i in screen.query(ChatItem)] == ["What is 17 × 23?"]
        )


async def test_enter_sends_and_ctrl_j_or_shift_enter_adds_a_line(r1_model: Path) -> None:
    app = make_app(model_file=r1_model, script=Script())
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        prompt = screen.query_one(PromptArea)
        prompt.focus()
        await pilot.press("a", "ctrl+j", "b", "shift+enter", "c")
        assert prompt.text == "a\nb\nc"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.chat_id is not None and screen.live is None)
        assert [t.render().plain for t in screen.query(UserTurn)] == ["a\nb\nc"]  # type: ignore[attr-defined]
        assert prompt.text == ""
        await pilot.press("enter")  # an empty prompt sends nothing
        assert len(screen.query(UserTurn)) == 1


async def test_panels_expand_on_demand_and_one_key_toggles_them_all(r1_model: Path) -> None:
    app = make_app(model_file=r1_model, script=Script())
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        for question in ("first?", "second?"):
            await ask(pilot, screen, question)
            await wait_for(pilot, lambda: screen.live is None)
        first, second = screen.query(ReplyView)
        assert not first.reasoning_open and not second.reasoning_open
        first.focus()
        await pilot.press("t")
        assert first.reasoning_open and not second.reasoning_open
        await pilot.press("ctrl+t")  # one is open: all fold
        assert not first.reasoning_open and not second.reasoning_open
        await pilot.press("ctrl+t")
        assert first.reasoning_open and second.reasoning_open


async def test_esc_stops_and_keeps_the_partial_reply_marked(r1_model: Path) -> None:
    script = Script(hold_at=30)
    app = make_app(model_file=r1_model, script=script)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await ask(pilot, screen, "Count to a million")
        await wait_for(pilot, script.reached_hold.is_set)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.live is None)
        reply = screen.query_one(ReplyView)
        assert "stopped: partial reply" in str(reply._meta.render())
        assert reply.answer_text == "" and reply.reasoning_text
        assert "Stopped; the partial reply is saved" in notes(app)
        (_, saved) = saved_messages(screen.chat_id)  # type: ignore[arg-type]
        assert saved.status == "interrupted" and saved.finish_reason == "interrupted"
        assert saved.reasoning == reply.reasoning_text and saved.content == ""
    # Reopened, the chat shows the partial reply with its mark.
    app = make_app(model_file=r1_model, script=Script())
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await screen.open_chat(saved.chat_id)
        await pilot.pause()
        reopened = screen.query_one(ReplyView)
        assert "stopped: partial reply" in str(reopened._meta.render())


async def test_wrap_up_closes_the_thinking_and_the_answer_follows(r1_model: Path) -> None:
    script = Script(hold_at=12)
    app = make_app(model_file=r1_model, script=script)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await ask(pilot, screen, "What is 17 × 23?")
        await wait_for(pilot, script.reached_hold.is_set)
        await pilot.press("ctrl+g")
        assert any("Wrapping up" in n for n in notes(app))
        script.release()
        await wait_for(pilot, lambda: screen.live is None)
        reply = screen.query_one(ReplyView)
        assert reply.answer_text == R1_ANSWER
        assert 0 < len(reply.reasoning_text) < len(R1_REASONING) / 4
        (_, saved) = saved_messages(screen.chat_id)  # type: ignore[arg-type]
        assert saved.status == "complete" and "</think>" not in saved.reasoning
        assert saved.reasoning_tokens is not None and saved.reasoning_tokens <= 13


async def test_regenerate_replaces_the_last_reply(r1_model: Path) -> None:
    script = Script()
    app = make_app(model_file=r1_model, script=script)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await ask(pilot, screen, "again?")
        await wait_for(pilot, lambda: screen.live is None)
        screen.query_one(ReplyView).focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: len(script.prompts) == 2 and screen.live is None)
        assert len(screen.query(ReplyView)) == 1 and len(screen.query(UserTurn)) == 1
        messages = saved_messages(screen.chat_id)  # type: ignore[arg-type]
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[1].content == R1_ANSWER


# -- saved chats ---------------------------------------------------------------------------


def _saved_chat(history: History, title: str, question: str, answer: str) -> int:
    chat_id = history.create_chat(title=title, model=R1_NAME)
    history.add_user_message(chat_id, question)
    reply = history.start_reply(chat_id, model=R1_NAME, params={})
    history.append_reply(reply, reasoning="thinking about " + question, answer=answer)
    history.finish_reply(
        reply,
        status="complete",
        finish_reason="stop",
        prompt_tokens=5,
        reasoning_tokens=3,
        answer_tokens=2,
        timings={"tokens_per_s": 10.0},
    )
    return chat_id


async def test_chats_switch_search_rename_and_delete(r1_model: Path) -> None:
    with History.open(default_paths().history_db) as history:
        fruit = _saved_chat(history, "Fruit", "Is a banana a berry?", "Yes, botanically.")
        sky = _saved_chat(history, "Sky", "Why is the sky blue?", "Rayleigh scattering.")
    app = make_app(model_file=r1_model, script=Script())
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await wait_for(  # newest first
            pilot, lambda: [i.title for i in screen.query(ChatItem)] == ["Sky", "Fruit"]
        )
        chats = screen.query_one(ChatListView)
        chats.focus()
        chats.index = 1
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.chat_id == fruit)
        assert screen.query_one(ReplyView).answer_text == "Yes, botanically."
        # Search (FTS over the history), then clear it.
        await pilot.press("ctrl+f")
        await pilot.press(*"rayleigh")
        await wait_for(pilot, lambda: [i.chat_id for i in screen.query(ChatItem)] == [sky])
        screen.query_one("#search").value = ""  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: len(screen.query(ChatItem)) == 2)
        # Rename the highlighted chat.
        chats.focus()
        chats.index = 0
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        field = app.screen.query_one("#text")
        field.value = "Blue sky"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Blue sky" in [i.title for i in screen.query(ChatItem)])
        # Delete asks first; cancel keeps it, confirm removes it.
        chats.focus()
        chats.index = 0
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert len(app.history.list_chats()) == 2
        chats.focus()
        chats.index = 0
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: len(screen.query(ChatItem)) == 1)
        assert [c.id for c in app.history.list_chats()] == [fruit]


async def test_export_writes_markdown_and_json_without_overwriting(
    r1_model: Path, tmp_path: Path
) -> None:
    app = make_app(model_file=r1_model, script=Script(), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await ask(pilot, screen, "Export me")
        await wait_for(pilot, lambda: screen.live is None)
        first = screen.export("md")
        second = screen.export("md")
        as_json = screen.export("json")
    assert first and second and as_json and first != second
    text = first.read_text()
    assert "Export me" in text and "391" in text and "17 times 23" in text  # reasoning too
    assert '"format": "ponder.chat"' in as_json.read_text()


# -- settings --------------------------------------------------------------------------------


async def test_settings_are_validated_saved_per_chat_and_used(r1_model: Path) -> None:
    script = Script()
    app = make_app(model_file=r1_model, script=script)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.screen is not screen)
        dialog = app.screen
        dialog.query_one("#temperature").value = "7"  # type: ignore[attr-defined]
        dialog.query_one("#max_tokens").value = "20"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        assert "Temperature: use a value from 0 to 2" in str(
            dialog.query_one("#temperature-error").render()
        )
        dialog.query_one("#temperature").value = "0.5"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.settings.get("temperature") == 0.5 and screen.settings.get("max_tokens") == 20
        await ask(pilot, screen, "short please")
        await wait_for(pilot, lambda: screen.live is None)
        (_, saved) = saved_messages(screen.chat_id)  # type: ignore[arg-type]
        assert saved.finish_reason == "length"
        assert saved.params["temperature"] == 0.5 and saved.params["max_tokens"] == 20
        with History.open(default_paths().history_db) as history:
            stored = history.get_chat(screen.chat_id).settings  # type: ignore[arg-type]
        assert stored == {"temperature": 0.5, "max_tokens": 20}


# -- errors ----------------------------------------------------------------------------------


async def test_a_model_that_will_not_load_is_a_notification_not_a_crash(r1_model: Path) -> None:
    script = Script(fail_load="llama.cpp could not load it: unknown model architecture")
    app = make_app(model_file=r1_model, script=script)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loading is None and notes(app))
        screen = chat_screen(app)
        assert app.model is None
        assert any("unknown model architecture" in n for n in notes(app))
        assert "no model loaded" in str(screen.query_one(StatusLine).render())
        prompt = screen.query_one(PromptArea)
        prompt.text = "hello?"
        await pilot.press("enter")
        assert any("No model is loaded" in n for n in notes(app))
        assert prompt.text == "hello?"  # kept, nothing lost


async def test_a_prompt_too_long_for_the_context_gives_it_back(r1_model: Path) -> None:
    app = make_app(model_file=r1_model, script=Script())
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        screen.settings = ChatSettings(n_ctx=1024)  # a small context, so a short test
        screen._reload_for_context()
        await wait_for(pilot, lambda: app.model is not None and app.model.n_ctx == 1024)
        long_prompt = "word " * 1100
        prompt = screen.query_one(PromptArea)
        prompt.text = long_prompt
        prompt.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("context holds" in n for n in notes(app)))
        await pilot.pause()
        assert screen.query_one(PromptArea).text == long_prompt.strip()
        assert not screen.query(ReplyView) and not screen.query(UserTurn)
        assert app.history.list_chats() == []


# -- models and downloads -------------------------------------------------------------------


@pytest.fixture()
def hub_with_r1(fake_hub: FakeHub, gemma_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """The fake Hub serves the Gemma GGUF under the catalog's r1:1.5b Q4_K_M file."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    resolved = make_app().session.catalog.resolve("r1:1.5b@Q4_K_M")
    fake_hub.add_file(resolved.quant.repo, resolved.quant.files[0], gemma_path)
    return fake_hub


async def test_first_run_welcome_recommends_and_downloads_with_progress(
    ponder_home: Path, fake_hub: FakeHub, gemma_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    laptop = machine("cpu_laptop_8gb")
    probe_app = make_app(hardware_profile=laptop)
    choice = hardware.recommend(probe_app.session.catalog, laptop)
    assert choice is not None
    ref = Resolved(choice.model, choice.quant).display_ref
    fake_hub.add_file(choice.quant.repo, choice.quant.files[0], gemma_path)
    fake_hub.throttle(100_000_000)
    app = make_app(script=Script(), hardware_profile=laptop, hub_endpoint=fake_hub.url)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        welcome = app.screen
        text = " ".join(str(s.render()) for s in welcome.query("Static"))
        assert hardware.render_one_line(laptop) in text
        assert ref in text and "Recommended" in text
        await pilot.press("d")
        await wait_for(pilot, lambda: "↓" in str(welcome.query_one("#download-status").render()))
        await wait_for(pilot, lambda: app.model is not None, timeout=60)
        assert isinstance(app.screen, ChatScreen)  # the welcome closed itself
        assert app.model.name == ref
        assert any("downloaded and verified" in n for n in notes(app))


async def test_picker_downloads_with_live_progress_pause_and_resume(
    ponder_home: Path, hub_with_r1: FakeHub
) -> None:
    hub_with_r1.throttle(20_000_000)
    app = make_app(script=Script(), hub_endpoint=hub_with_r1.url)
    ref = "r1:1.5b@Q4_K_M"
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen))
        picker = app.screen
        table = picker.query_one("DataTable")
        # The speed the session predicts for it here, as `ponder fit` has it.
        fits = {row.ref: row for row in session_machine.catalog_fits(app.session)}
        speed = str(table.get_cell(ref, "speed"))  # type: ignore[attr-defined]
        assert speed == fits[ref].speed and re.fullmatch(r"≈ [\d.]+ tok/s", speed), speed
        table.move_cursor(row=table.get_row_index(ref))  # type: ignore[attr-defined]
        await pilot.press("enter")

        def status() -> str:
            return str(table.get_cell(ref, "status"))  # type: ignore[attr-defined]

        await wait_for(pilot, lambda: status().startswith("↓") and "/s" in status())
        assert re.fullmatch(r"↓ \d+% of 253\.1 MB · [\d.]+ MB/s · .+ left", status()), status()
        await pilot.press("x")
        await wait_for(pilot, lambda: status().startswith("paused at"))
        (pending,) = pending_pulls(app.session.store)
        assert pending.name == ref and 0 < pending.done(app.session.store) < pending.size
    # After a restart the paused download is still there, and resumes.
    hub_with_r1.throttle(None)
    app = make_app(script=Script(), hub_endpoint=hub_with_r1.url)
    async with app.run_test(size=SIZE) as pilot:
        assert app.downloads[ref].status == "paused"
        app.start_download(ref)
        await wait_for(pilot, lambda: app.model is not None, timeout=60)
        assert app.model.name == ref
        starts = [r.range_start for r in hub_with_r1.requests if r.method == "GET"]
        assert starts[-1], "the second run asked only for the missing bytes"


async def test_switching_models_loads_in_a_worker_and_refuses_mid_reply(
    r1_model: Path, gemma_path: Path
) -> None:
    script = Script(hold_at=5)
    app = make_app(model_file=r1_model, script=script)
    app.session.import_model(gemma_path, name="gemma-other")
    store = app.session.store
    other = next(m for m in store.installed() if m.name == "gemma-other")
    store.add(dataclasses.replace(other, unverified=True))  # as `pull --allow-unverified` does
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await ask(pilot, screen, "hold on")
        await wait_for(pilot, script.reached_hold.is_set)
        assert app.load_model("gemma-other") is False
        await wait_for(pilot, lambda: any("Stop the reply first" in n for n in notes(app)))
        script.release()
        await wait_for(pilot, lambda: screen.live is None)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen))
        table = app.screen.query_one("DataTable")
        status = {name: str(table.get_cell(name, "status")) for name in ("gemma-other", R1_NAME)}  # type: ignore[attr-defined]
        assert status["gemma-other"] in ("installed · unverified", "loaded · unverified")
        assert status[R1_NAME] in ("installed", "loaded")
        table.move_cursor(row=table.get_row_index("gemma-other"))  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.model is not None and app.model.name == "gemma-other")
        assert app.screen is screen
        assert "gemma-other" in str(screen.query_one(StatusLine).render())


async def test_a_prompt_sent_while_another_model_loads_is_refused_and_never_overlaps(
    r1_model: Path, gemma_path: Path
) -> None:
    """The loading race: while a second model loads, the chat refuses a prompt (the
    screen says why, and the model being replaced refuses it too), so the session never
    runs a reply next to a load."""
    script = Script()
    app = make_app(model_file=r1_model, script=script)
    app.session.import_model(gemma_path, name="gemma-other")
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        replaced = app.model
        assert replaced is not None and script.loads == 1
        # The app opens the most recently installed model; switch to the other one.
        second = R1_NAME if replaced.name == "gemma-other" else "gemma-other"
        script.hold_load = True
        assert app.load_model(second)
        await wait_for(pilot, script.reached_load_hold.is_set)  # the old model is closed now
        await wait_for(pilot, lambda: "loading…" in str(screen.query_one(StatusLine).render()))
        spinner = screen.query_one("#loading")
        assert spinner.display and spinner.auto_refresh  # it spins while a model loads
        prompt = screen.query_one(PromptArea)
        prompt.text = "are you there?"
        prompt.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: f"{second} is still loading…" in notes(app))
        assert prompt.text == "are you there?" and not screen.query(UserTurn)
        # Past the screen, the core refuses too: the model being replaced takes no reply.
        with pytest.raises(ModelLoadError):
            replaced.reply(ReplyRequest("sneaking in", save=False))
        script.release_load()
        await wait_for(pilot, lambda: app.model is not None and app.model.name == second)
        await ready(pilot, app)
        assert screen.loading_model is None
        # Hidden, it no longer wakes the event loop sixteen times a second.
        assert not spinner.display and spinner.auto_refresh is None
        await pilot.press("enter")  # the same prompt, now to the new model
        await wait_for(pilot, lambda: screen.chat_id is not None and screen.live is None)
    assert script.loads == 2 and len(script.prompts) == 1
    assert script.most_at_once == 1, script.overlaps
    (_, saved) = saved_messages(screen.chat_id)
    assert saved.model == second and saved.status == "complete"


async def test_hardware_screen_shows_the_doctor_report(r1_model: Path) -> None:
    app = make_app(
        model_file=r1_model, script=Script(), hardware_profile=machine("rtx4090_desktop")
    )
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("f4")
        await wait_for(pilot, lambda: "Findings" in str(app.screen.query_one("#report").render()))
        report = str(app.screen.query_one("#report").render())
        assert "RTX 4090" in report and "What fits" in report


# -- the real engine ---------------------------------------------------------------------------


@pytest.mark.real_model
async def test_real_engine_streams_a_think_block_into_the_panels(
    gemma_path: Path, ponder_home: Path
) -> None:
    app = make_app(model_file=gemma_path, model_name="gemma-think", grammar=THINK_GRAMMAR)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await ask(pilot, screen, "What is two plus two?")
        await wait_for(pilot, lambda: screen.live is None, timeout=120)
        reply = screen.query_one(ReplyView)
        assert re.fullmatch(THOUGHT, reply.reasoning_text), reply.reasoning_text
        assert re.fullmatch(ANSWER, reply.answer_text), reply.answer_text
        assert not reply.reasoning_open
        (_, saved) = saved_messages(screen.chat_id)  # type: ignore[arg-type]
        assert saved.content == reply.answer_text and saved.reasoning == reply.reasoning_text
        assert saved.status == "complete"


# -- crash safety ------------------------------------------------------------------------------

KILLED_RUN = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from support.scripted import Script
    from support.tuikit import make_app

    async def main():
        app = make_app(model_file=Path({model!r}), script=Script(tokens_per_s=40))
        async with app.run_test(size=(100, 32)) as pilot:
            while app.model is None:
                await pilot.pause(0.05)
            screen = app.screen
            screen.query_one("#prompt").text = "a long question"
            await pilot.press("enter")
            await pilot.pause(2.0)
            print("streaming", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


async def test_killed_mid_reply_the_chat_reopens_with_the_partial_reply_marked(
    r1_model: Path, ponder_home: Path
) -> None:
    code = KILLED_RUN.format(tests=str(Path(__file__).parents[1]), model=str(r1_model))
    killed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PONDER_HOME": str(ponder_home)},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "streaming" in killed.stdout
    app = make_app(model_file=r1_model, script=Script())
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        (summary,) = app.history.list_chats()
        await screen.open_chat(summary.id)
        await pilot.pause()
        reply = screen.query_one(ReplyView)
        assert reply.reasoning_text.startswith("Okay, so I need")
        assert "stopped: partial reply" in str(reply._meta.render())


# -- the palette, import, a failed download ----------------------------------------------------


async def test_command_palette_exports_the_chat(r1_model: Path, tmp_path: Path) -> None:
    app = make_app(model_file=r1_model, script=Script(), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await ask(pilot, screen, "Palette me")
        await wait_for(pilot, lambda: screen.live is None)
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"export chat as json")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: list(tmp_path.glob("*.json")))
        (exported,) = tmp_path.glob("*.json")
        assert '"Palette me"' in exported.read_text()


async def test_welcome_imports_a_local_gguf_and_loads_it(r1_model: Path, ponder_home: Path) -> None:
    app = make_app(script=Script(), hardware_profile=machine("cpu_laptop_8gb"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        app.screen.query_one("#text").value = str(ponder_home / "missing.gguf")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("no such file" in n for n in notes(app)))
        assert isinstance(app.screen, WelcomeScreen)  # still here, nothing imported
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        app.screen.query_one("#text").value = str(r1_model)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.model is not None, timeout=60)
        assert app.model.name == r1_model.stem
        assert isinstance(app.screen, ChatScreen)


async def test_a_failed_download_is_shown_with_its_reason(
    ponder_home: Path, hub_with_r1: FakeHub
) -> None:
    from support.fakehub import Fault

    resolved = make_app().session.catalog.resolve("r1:1.5b@Q4_K_M")
    path = f"{resolved.quant.repo}/{resolved.quant.files[0]}"
    hub_with_r1.fail(path, Fault("status", status=403), times=10)
    app = make_app(script=Script(), hub_endpoint=hub_with_r1.url)
    async with app.run_test(size=SIZE) as pilot:
        app.start_download("r1:1.5b@Q4_K_M")
        await wait_for(pilot, lambda: app.downloads["r1:1.5b@Q4_K_M"].status == "failed")
        await wait_for(pilot, lambda: any("403" in n or "denied" in n.lower() for n in notes(app)))
        assert app.session.store.installed() == []
