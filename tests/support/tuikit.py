"""Building the TUI for tests, snapshots and the TUI benchmark: a real Session, a real
SQLite history under PONDER_HOME, and either the real engine or a scripted one."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ponder.catalog import load_catalog
from ponder.config import load_settings
from ponder.download import Hub
from ponder.engine import LlamaEngine
from ponder.hardware import HardwareProfile
from ponder.history import History
from ponder.paths import default_paths
from ponder.session import Session
from ponder.store import import_file
from ponder.tui.app import PonderApp
from ponder.tui.screens.chat import ChatScreen
from ponder.tui.widgets.prompt import PromptArea
from support.scripted import Script, loader

R1_NAME = "DeepSeek-R1-Distill-Test"
TIMEOUT_S = 30.0


def make_app(
    *,
    model_file: Path | None = None,
    model_name: str = R1_NAME,
    script: Script | None = None,
    hardware_profile: HardwareProfile | None = None,
    hub_endpoint: str | None = None,
    grammar: str | None = None,
    export_dir: Path | None = None,
    wanted: str | None = None,
) -> PonderApp:
    """The app over PONDER_HOME; ``model_file`` is installed (linked) as ``model_name``;
    ``wanted`` is the model named on the command line (``ponder chat MODEL``)."""
    paths = default_paths()
    history = History.open(paths.history_db)
    session = Session(
        settings=load_settings(paths),
        paths=paths,
        catalog=load_catalog(),
        history=history,
        load_engine=loader(script) if script is not None else LlamaEngine.load,
        hub=Hub(endpoint=hub_endpoint) if hub_endpoint else None,
        hardware_profile=hardware_profile,
    )
    if model_file is not None and session.store.find(model_name) is None:
        import_file(session.store, model_file, name=model_name, link=True)
    return PonderApp(session, model=wanted, grammar=grammar, export_dir=export_dir)


# -- driving the app from a test (pilot helpers) ---------------------------------------


async def wait_for(pilot, condition: Callable[[], object], timeout: float = TIMEOUT_S) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.02)


def chat_screen(app: PonderApp) -> ChatScreen:
    screen = app.screen
    assert isinstance(screen, ChatScreen), screen
    return screen


async def ready(pilot, app: PonderApp) -> ChatScreen:  # type: ignore[no-untyped-def]
    """The chat screen once the model is loaded and the screen has been told so."""
    await wait_for(pilot, lambda: app.model is not None and chat_screen(app).model is app.model)
    return chat_screen(app)


async def ask(pilot, screen: ChatScreen, text: str) -> None:  # type: ignore[no-untyped-def]
    prompt = screen.query_one(PromptArea)
    prompt.text = text
    prompt.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.live is not None or not prompt.text)


def notes(app: PonderApp) -> list[str]:
    return [n.message for n in app._notifications]


def saved_messages(chat_id: int):  # type: ignore[no-untyped-def]
    with History.open(default_paths().history_db) as history:
        return history.get_chat(chat_id).messages
