"""Screens as pictures (pytest-textual-snapshot), at 80×24 or a little larger.

Everything in them is fixed: a recorded machine instead of this one, a chat seeded
into the history with its timings, the scripted engine. The chat and model-picker
pictures are the README's screenshots (copied to assets/ by `--snapshot-update`
runs; see README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.history import History
from ponder.paths import default_paths
from ponder.tui.app import DownloadState, PonderApp
from ponder.tui.screens.chat import ChatScreen
from support.machines import machine
from support.scripted import R1_ANSWER, R1_REASONING, Script
from support.tuikit import R1_NAME, make_app

WIDE = (100, 30)
SMALL = (80, 24)


def _seed_chat() -> None:
    with History.open(default_paths().history_db) as history:
        chat_id = history.create_chat(title="What is 17 × 23?", model=R1_NAME)
        history.create_chat(title="Why is the sky blue?", model=R1_NAME)
        history.create_chat(title="Prove √2 is irrational", model=R1_NAME)
        history.add_user_message(chat_id, "What is 17 × 23?")
        reply = history.start_reply(chat_id, model=R1_NAME, params={})
        history.append_reply(reply, reasoning=R1_REASONING, answer=R1_ANSWER)
        history.finish_reply(
            reply,
            status="complete",
            finish_reason="stop",
            prompt_tokens=14,
            reasoning_tokens=212,
            answer_tokens=74,
            timings={"thinking_s": 7.9, "tokens_per_s": 36.4},
        )
        # The seeded chat is the newest.
        history.add_user_message(chat_id, "And 17 × 24?")
        history.take_last_exchange(chat_id)


def _chat_app(r1_gemma: Path) -> PonderApp:
    _seed_chat()
    app = make_app(
        model_file=r1_gemma, script=Script(), hardware_profile=machine("rtx4090_desktop")
    )
    app.animation_level = "none"  # a scroll caught mid-animation would differ run to run
    return app


async def _open_first_chat(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    while app.model is None:
        await pilot.pause(0.05)
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    screen.query_one("#prompt").cursor_blink = False  # a blink caught either way would differ
    (first, *_) = app.history.list_chats()
    await screen.open_chat(first.id)
    await pilot.pause(0.3)


def test_welcome(snap_compare, ponder_home: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(script=Script(), hardware_profile=machine("cpu_laptop_8gb"))
    assert snap_compare(app, terminal_size=SMALL)


def test_chat_reasoning_folded(snap_compare, r1_gemma: Path, ponder_home: Path) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_chat_app(r1_gemma), terminal_size=WIDE, run_before=_open_first_chat)


def test_chat_reasoning_unfolded(snap_compare, r1_gemma: Path, ponder_home: Path) -> None:  # type: ignore[no-untyped-def]
    async def unfold(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open_first_chat(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause(0.3)
        # Unfolding scrolls the panel into view after a refresh; pin the frame to the top.
        pilot.app.screen.query_one("#conversation").scroll_home(animate=False)
        await pilot.pause(0.3)

    assert snap_compare(_chat_app(r1_gemma), terminal_size=WIDE, run_before=unfold)


def test_chat_at_80x24(snap_compare, r1_gemma: Path, ponder_home: Path) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_chat_app(r1_gemma), terminal_size=SMALL, run_before=_open_first_chat)


def test_model_picker_with_a_download(snap_compare, r1_gemma: Path, ponder_home: Path) -> None:  # type: ignore[no-untyped-def]
    app = _chat_app(r1_gemma)
    # A download's state as the app keeps it (the live transfer is covered in test_tui).
    app.downloads["r1:7b@Q8_0"] = DownloadState(
        "r1:7b@Q8_0",
        total=8_100_000_000,
        done=3_240_000_000,
        bytes_per_s=48_000_000,
        status="running",
    )

    async def open_picker(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open_first_chat(pilot)
        await pilot.press("f2")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=WIDE, run_before=open_picker)


def test_settings(snap_compare, r1_gemma: Path, ponder_home: Path) -> None:  # type: ignore[no-untyped-def]
    async def open_settings(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open_first_chat(pilot)
        await pilot.press("f3")
        await pilot.pause(0.3)

    assert snap_compare(_chat_app(r1_gemma), terminal_size=WIDE, run_before=open_settings)


def test_hardware(snap_compare, r1_gemma: Path, ponder_home: Path) -> None:  # type: ignore[no-untyped-def]
    async def open_hardware(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open_first_chat(pilot)
        await pilot.press("f4")
        await pilot.pause(0.5)

    assert snap_compare(_chat_app(r1_gemma), terminal_size=WIDE, run_before=open_hardware)


@pytest.mark.parametrize(
    ("asset", "snapshot"),
    [
        ("chat.svg", "test_chat_reasoning_folded.svg"),
        ("models.svg", "test_model_picker_with_a_download.svg"),
    ],
)
def test_readme_screenshots_are_the_current_snapshots(asset: str, snapshot: str) -> None:
    """README.md shows assets/*.svg; after `--snapshot-update`, copy the new pictures there."""
    here = Path(__file__).resolve().parent
    shot = here / "__snapshots__" / "test_snapshots" / snapshot
    assert (here.parents[1] / "assets" / asset).read_bytes() == shot.read_bytes()
