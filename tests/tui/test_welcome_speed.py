"""The welcome screen's recommendation knows the speed: it says how fast the distill
will think here, and the slower, bigger one is one key (b) away."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ponder import hardware
from ponder.catalog import Resolved
from ponder.tui.messages import DownloadRequested
from ponder.tui.screens.welcome import WelcomeScreen
from support.machines import machine
from support.scripted import Script
from support.tuikit import make_app

pytestmark = pytest.mark.anyio


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.02)


async def test_welcome_shows_the_speed_and_b_takes_the_bigger_one() -> None:
    laptop = machine("cpu_laptop_8gb")
    app = make_app(script=Script(), hardware_profile=laptop)
    choice = hardware.recommend(app.session.catalog, laptop)
    assert choice is not None and choice.bigger is not None and choice.plan.speed is not None
    bigger = Resolved(choice.bigger.model, choice.bigger.quant).display_ref
    asked: list[str] = []
    post = app.post_message

    def spy(message):  # type: ignore[no-untyped-def]
        if isinstance(message, DownloadRequested):
            asked.append(message.name)
            return True
        return post(message)

    app.post_message = spy  # type: ignore[method-assign]
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        welcome = app.screen
        text = " ".join(str(s.render()) for s in welcome.query("Static"))
        assert hardware.speed_phrase(choice.plan.speed) in " ".join(text.split())
        assert "8 tokens/s or more" in text and bigger in text and "b  bigger one" in text
        await pilot.press("b")
        await wait_for(pilot, lambda: asked == [bigger])
        assert isinstance(welcome, WelcomeScreen) and welcome.ref == bigger
