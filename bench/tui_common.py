"""What both parts of bench_tui.py share: the prompt, the app's size, and the helpers
that drive the headless app (a fresh PONDER_HOME, waiting for the model and the reply).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "tests"))

from ponder.session import ChatSettings  # noqa: E402
from ponder.tui.app import PonderApp  # noqa: E402
from ponder.tui.screens.chat import ChatScreen  # noqa: E402
from ponder.tui.widgets.reply import ReplyView  # noqa: E402

PROMPT = "Think step by step: what is 17 times 23?"
SEED = 1
SIZE = (100, 30)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def spread(values: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max."""
    if not values:
        return float("nan"), float("nan"), float("nan")
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95, ordered[-1]


def ms(values: list[float]) -> str:
    p50, p95, top = spread([v * 1000 for v in values])
    return f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   max {top:7.1f} ms"


def fresh_home(parent: Path, name: str) -> Path:
    """A new PONDER_HOME for the in-process app (make_app reads it)."""
    home = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=parent))
    os.environ["PONDER_HOME"] = str(home)
    return home


def with_max_tokens(settings: ChatSettings, n: int) -> ChatSettings:
    """The chat's settings with a reply budget of ``n`` tokens."""
    return dataclasses.replace(settings, sampling={**settings.sampling, "max_tokens": n})


def chat_screen(app: PonderApp) -> ChatScreen:
    return next(s for s in app.screen_stack if isinstance(s, ChatScreen))


def model_ready(app: PonderApp) -> bool:
    """The model is loaded and the chat screen has been told (it sends to that model)."""
    chat = next((s for s in app.screen_stack if isinstance(s, ChatScreen)), None)
    return app.model is not None and chat is not None and chat.model is app.model


async def wait_for_model(app: PonderApp, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    await asyncio.sleep(0.05)
    while not model_ready(app):
        # Loaded but the screens not told yet is a moment to wait, not a failure.
        if app.loading is None and app.model is None:
            raise RuntimeError("the app did not load its model (see the app's notifications)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the model did not load in {timeout_s:.0f} s")
        await asyncio.sleep(0.05)


async def wait_for_reply(
    screen: ChatScreen, reply: ReplyView, timeout_s: float, poll_s: float
) -> None:
    """Until ReplyFinished has been handled (``screen.live`` is None again)."""
    deadline = time.monotonic() + timeout_s
    while screen.live is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the reply did not finish in {timeout_s:.0f} s")
        await asyncio.sleep(poll_s)
    if reply.has_class("failed"):
        raise RuntimeError("the reply failed (ReplyFailed)")
