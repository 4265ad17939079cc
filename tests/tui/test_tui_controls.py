"""The chat UI's reasoning controls: a per-chat thinking budget, and votes.

The scripted engine plays an R1 reply (it starts inside thinking and answers once
told its thinking is done), so the budget's cut and the vote's tally are exact.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ponder.history import History
from ponder.paths import default_paths
from ponder.tui.widgets.candidates import CandidatesPanel
from ponder.tui.widgets.reply import ReplyView
from support.scripted import Script
from support.tuikit import ask, make_app, ready, saved_messages, wait_for

SIZE = (100, 32)
pytestmark = pytest.mark.anyio


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


async def set_fields(pilot, app, values: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    screen = app.screen
    await pilot.press("f3")
    await wait_for(pilot, lambda: app.screen is not screen)
    dialog = app.screen
    for name, value in values.items():
        dialog.query_one(f"#{name}").value = value
    await pilot.press("ctrl+s")
    return dialog


async def test_a_thinking_budget_is_a_chat_setting_and_shows_in_the_panel(
    r1_gemma: Path, ponder_home: Path
) -> None:
    app = make_app(model_file=r1_gemma, script=Script())
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        dialog = await set_fields(pilot, app, {"think_budget": "many"})
        assert "Thinking budget: “many” is not a whole number" in str(
            dialog.query_one("#think_budget-error").render()
        )
        dialog.query_one("#think_budget").value = "6"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.settings.think_budget == 6
        await ask(pilot, screen, "What is 17*23?")
        await wait_for(pilot, lambda: screen.live is None)
        reply = list(screen.query(ReplyView))[-1]
        assert re.fullmatch(r"Thought for \d+ s · 6 tokens · budget 6", str(reply._panel.title))
        (_, saved) = saved_messages(screen.chat_id)  # type: ignore[arg-type]
        assert saved.reasoning_tokens == 6 and saved.params["think_budget"] == 6
        with History.open(default_paths().history_db) as history:
            stored = history.get_chat(screen.chat_id).settings  # type: ignore[arg-type]
        assert stored == {"think_budget": 6}


async def test_votes_show_the_tally_and_every_candidate_also_when_reopened(
    r1_gemma: Path, ponder_home: Path
) -> None:
    app = make_app(model_file=r1_gemma, script=Script())
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        dialog = await set_fields(pilot, app, {"votes": "1"})
        assert "Votes: use at least 2" in str(dialog.query_one("#votes-error").render())
        dialog.query_one("#votes").value = "3"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen)
        await ask(pilot, screen, "What is 17*23?")
        await wait_for(pilot, lambda: screen.live is None)
        reply = list(screen.query(ReplyView))[-1]
        meta = str(reply._meta.render())
        assert meta.startswith("3 of 3 agree"), meta
        panel = reply.query_one(CandidatesPanel)
        assert panel.collapsed and "3 candidates" in panel.title
        heads = [str(s.render()) for s in panel.query(".candidate-head")]
        assert len(heads) == 3 and sum("winner" in h for h in heads) == 1
        (_, saved) = saved_messages(screen.chat_id)  # type: ignore[arg-type]
        assert len(saved.candidates) == 3
        assert reply.answer_text == saved.content and reply.answer_text
        chat_id = screen.chat_id
        # Reopened, the reply shows the same tally and candidates from the history.
        await screen.action_new_chat()
        assert not list(screen.query(CandidatesPanel))
        await screen.open_chat(chat_id)  # type: ignore[arg-type]
        await wait_for(pilot, lambda: list(screen.query(CandidatesPanel)))
        again = list(screen.query(ReplyView))[-1]
        assert str(again._meta.render()).startswith("3 of 3 agree")
        assert len(again.query_one(CandidatesPanel).query(".candidate-head")) == 3


async def test_a_gguf_named_on_the_command_line_loads_with_nothing_installed(
    r1_gemma: Path, ponder_home: Path
) -> None:
    """`ponder chat ./model.gguf` on a fresh machine: the model, not the welcome screen."""
    app = make_app(script=Script(), wanted=str(r1_gemma))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        assert app.model is not None and app.model.name == r1_gemma.name
        assert screen is app.screen
