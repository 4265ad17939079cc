"""Long replies and long chats in the chat UI, driven with Textual's Pilot.

A reply is a fixed handful of widgets however long it grows (each panel is one
MarkdownText), so a screen update's layout does not grow with the answer; a long saved
chat opens, scrolls back to its first turn and forward again, and draws what it holds.
How fast that is, is bench/bench_tui.py's to measure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ponder.history import History
from ponder.paths import default_paths
from ponder.tui.app import PonderApp
from ponder.tui.screens.chat import ChatScreen
from ponder.tui.widgets.markdown import MarkdownText
from ponder.tui.widgets.prompt import PromptArea
from ponder.tui.widgets.reply import ReplyView, UserTurn
from support.scripted import R1_ANSWER, R1_REASONING, Script
from support.tuikit import R1_NAME, make_app

SIZE = (100, 32)
TIMEOUT_S = 60.0

pytestmark = pytest.mark.anyio


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


async def wait_for(pilot, condition: Callable[[], object]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.02)


async def ready(pilot, app: PonderApp) -> ChatScreen:  # type: ignore[no-untyped-def]
    def told() -> bool:
        screen = app.screen
        loaded = app.model is not None
        return isinstance(screen, ChatScreen) and loaded and screen.model is app.model

    await wait_for(pilot, told)
    assert isinstance(app.screen, ChatScreen)
    return app.screen


def long_answer(sections: int) -> str:
    return "\n".join(f"## Check {n}\n\n{R1_ANSWER}" for n in range(1, sections + 1))


def drawn_text(widget: MarkdownText) -> str:
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


async def reply_widgets(r1_gemma: Path, answer: str) -> tuple[int, int]:
    """Stream one scripted reply with ``answer``; the widgets its ReplyView ends with, and
    how many of them are MarkdownText."""
    app = make_app(model_file=r1_gemma, script=Script(answer=answer))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        prompt = screen.query_one(PromptArea)
        prompt.text = "What is 17 × 23?"
        prompt.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.live is None and screen.query(ReplyView))
        reply = screen.query_one(ReplyView)
        assert reply.answer_text == answer
        return len(reply.query("*")), len(reply.query(MarkdownText))


async def test_a_reply_is_as_many_widgets_however_long_its_answer(
    r1_gemma: Path, ponder_home: Path
) -> None:
    short, _ = await reply_widgets(r1_gemma, R1_ANSWER)
    long, markdown = await reply_widgets(r1_gemma, long_answer(30))
    assert long == short
    # The 30 tables and code blocks are drawn, not mounted: one MarkdownText holds them.
    assert markdown == 2


def seed_long_chat(exchanges: int) -> int:
    with History.open(default_paths().history_db) as history:
        chat_id = history.create_chat(title="A long chat", model=R1_NAME)
        for n in range(1, exchanges + 1):
            history.add_user_message(chat_id, f"Question {n}: what is 17 × 23?")
            reply = history.start_reply(chat_id, model=R1_NAME, params={})
            history.append_reply(reply, reasoning=R1_REASONING, answer=long_answer(3))
            history.finish_reply(
                reply, status="complete", finish_reason="stop", prompt_tokens=14,
                reasoning_tokens=212, answer_tokens=222, timings={"thinking_s": 7.9},
            )  # fmt: skip
        return chat_id


async def test_a_long_saved_chat_scrolls_back_to_its_first_turn_and_down_again(
    r1_gemma: Path, ponder_home: Path
) -> None:
    chat_id = seed_long_chat(40)
    app = make_app(model_file=r1_gemma, script=Script())
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot, app)
        await screen.open_chat(chat_id)
        await pilot.pause()
        conversation = screen.query_one("#conversation")
        replies = list(screen.query(ReplyView))
        assert len(replies) == 40 and len(screen.query(UserTurn)) == 40
        assert conversation.scroll_y == conversation.max_scroll_y > 0
        assert "Check 3" in drawn_text(replies[-1].query(MarkdownText).last())

        conversation.scroll_home(animate=False)
        await pilot.pause()
        assert conversation.scroll_y == 0
        first = screen.query(UserTurn).first()
        assert first.region.y >= conversation.region.y  # on screen, at the top
        assert "Question 1:" in str(first.render())

        conversation.focus()
        for _ in range(5):
            await pilot.press("pagedown")
        await pilot.pause()
        assert conversation.scroll_y > 0
        conversation.scroll_end(animate=False)
        await pilot.pause()
        assert conversation.scroll_y == conversation.max_scroll_y
        # Every reply is its few widgets; none of its tables or code blocks is one.
        assert len(conversation.query("*")) == 40 * (1 + len(replies[0].query("*"))) + 40
