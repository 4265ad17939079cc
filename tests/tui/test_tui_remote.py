"""The chat UI on a remote model: `ponder chat lab:` against the loopback OpenAI server
(a recorded vLLM stream) and, once, against the real llama.cpp server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ponder.history import History
from ponder.paths import default_paths
from ponder.tui.app import PonderApp
from ponder.tui.screens.chat import ChatScreen
from ponder.tui.screens.models import ModelsScreen
from ponder.tui.widgets.prompt import PromptArea
from ponder.tui.widgets.reply import ReplyView
from ponder.tui.widgets.status import StatusLine
from support.fake_openai import FakeOpenAI, Reply
from support.llama_server import REMOTE_ALIAS, REMOTE_KEY, LlamaServer
from support.openai_streams import ANSWER, BY_NAME, REASONING, to_sse
from support.tuikit import make_app

SIZE = (110, 32)
pytestmark = pytest.mark.anyio


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.02)


def remote_app(url: str, *, key_env: str | None = None, grammar: str | None = None) -> PonderApp:
    base = make_app()
    fields: dict[str, object] = {"url": url}
    if key_env:
        fields["api_key_env"] = key_env
    base.session.remotes.add("lab", **fields)
    return PonderApp(base.session, model="lab:", grammar=grammar)


async def send(pilot, app: PonderApp, text: str) -> ChatScreen:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: app.model is not None)
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    await wait_for(pilot, lambda: screen.model is app.model)
    prompt = screen.query_one(PromptArea)
    prompt.text = text
    prompt.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.live is not None or not prompt.text)
    await wait_for(pilot, lambda: screen.live is None)
    return screen


async def test_chat_on_a_remote_streams_saves_and_lists_it(ponder_home: Path) -> None:
    body = to_sse(BY_NAME["vllm-reasoning"].chunks)
    with FakeOpenAI(kind="vllm", default=Reply(body, pieces=(64,))) as fake:
        app = remote_app(fake.url)
        async with app.run_test(size=SIZE) as pilot:
            screen = await send(pilot, app, "What is 17*23?")
            reply = screen.query_one(ReplyView)
            assert reply.answer_text == ANSWER
            assert reply.reasoning_text.strip() == REASONING
            status = str(screen.query_one(StatusLine).render())
            assert status.startswith("lab:deepseek-ai/DeepSeek-R1") and "vllm 0.19.1" in status
            assert screen.chat_id is not None
            with History.open(default_paths().history_db) as history:
                chat = history.get_chat(screen.chat_id)
            assert chat.summary.model == "lab:deepseek-ai/DeepSeek-R1"
            assert chat.messages[-1].content == ANSWER
            # The model picker lists the remote's models beside the catalog.
            await pilot.press("f2")
            await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen))
            picker = app.screen
            assert isinstance(picker, ModelsScreen)
            await wait_for(pilot, lambda: "lab:deepseek-ai/DeepSeek-R1" in picker.kinds)
            assert picker.kinds["lab:deepseek-ai/DeepSeek-R1"] == "installed"


@pytest.mark.real_model
async def test_chat_on_the_real_llama_server(
    llama_server: LlamaServer, ponder_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", REMOTE_KEY)
    grammar = 'root ::= "<think>" "it is day" "</think>" " Yes."\n'
    app = remote_app(llama_server.url, key_env="LAB_KEY", grammar=grammar)
    async with app.run_test(size=SIZE) as pilot:
        screen = await send(pilot, app, "Is the sky blue?")
        reply = screen.query_one(ReplyView)
        assert (reply.reasoning_text.strip(), reply.answer_text) == ("it is day", "Yes.")
        assert str(screen.query_one(StatusLine).render()).startswith(f"lab:{REMOTE_ALIAS}")
