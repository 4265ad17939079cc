"""How often the streaming follower paints: fewer frames when tokens come slowly."""

from __future__ import annotations

import pytest

from ponder.tui.widgets import stream
from ponder.tui.widgets.stream import LONGEST_WAIT_S, STREAM_FPS, StreamFollower


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(stream.time, "monotonic", clock)
    return clock


def follower() -> StreamFollower:
    return StreamFollower(host=None, on_phase_change=lambda: None)  # type: ignore[arg-type]


def test_before_the_first_token_a_look_waits_the_longest(clock: Clock) -> None:
    f = follower()
    assert f.frame_interval() == LONGEST_WAIT_S
    f.saw_tokens(0)
    assert f.frame_interval() == LONGEST_WAIT_S


@pytest.mark.parametrize(
    ("tokens_per_s", "expected"),
    [
        (50.0, 1 / STREAM_FPS),  # fast: every frame has tokens, the frame rate caps it
        (12.5, 2 / 12.5),  # two tokens a frame
        (3.0, LONGEST_WAIT_S),  # slow: no token waits longer than the cap
    ],
)
def test_a_frame_waits_for_about_two_tokens(
    clock: Clock, tokens_per_s: float, expected: float
) -> None:
    f = follower()
    f.saw_tokens(3)  # the first look that found tokens starts the count
    clock.now += 4.0
    f.saw_tokens(3 + int(4.0 * tokens_per_s))
    assert f.frame_interval() == pytest.approx(expected)


def test_right_after_the_first_tokens_the_fastest_rate_is_assumed(clock: Clock) -> None:
    f = follower()
    f.saw_tokens(1)
    assert f.frame_interval() == 1 / STREAM_FPS
