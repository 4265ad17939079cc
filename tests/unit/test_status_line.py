"""The chat's status line stays one line, dropping its least needed parts first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ponder.tui.widgets.status import Status

LIVE = Status(
    model="DeepSeek-R1-Distill-Qwen-7B-Q4_K_M",
    placement="CPU",
    ctx_used=1234,
    ctx_size=16384,
    tokens_per_s=5.25,
    state="thinking…",
    hint="Ctrl+G wraps up",
)


def test_wide_it_says_everything() -> None:
    assert LIVE.fit(200) == (
        "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M · CPU · ctx 1,234/16,384 · 5.2 tok/s"
        " · thinking… (Ctrl+G wraps up)"
    )


def test_narrower_the_hint_goes_then_the_placement_then_the_context() -> None:
    steps = [
        "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M · CPU · ctx 1,234/16,384 · 5.2 tok/s · thinking…",
        "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M · ctx 1,234/16,384 · 5.2 tok/s · thinking…",
        "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M · 5.2 tok/s · thinking…",
    ]
    for line in steps:  # each fits exactly where it is as wide as the terminal
        assert LIVE.fit(len(line)) == line


def test_narrowest_the_name_is_cut_in_the_middle_and_the_state_stays() -> None:
    line = LIVE.fit(40)
    assert line.endswith(" · 5.2 tok/s · thinking…") and "…" in line.split(" · ")[0]
    assert line.startswith("DeepSee") and line.split(" · ")[0].endswith("Q4_K_M")
    assert LIVE.fit(20) == "5.2 tok/s · thinking…"[:20]


def test_no_model_and_not_laid_out_yet() -> None:
    assert Status(model=None).fit(80) == "no model loaded · F2 picks one"
    assert Status(model=None).fit(10) == "no model l"
    assert Status(model="a-rather-long-model-name").fit(12) == "a-rat…l-name"
    assert Status(model=None, state="loading…").fit(80) == "loading…"
    assert LIVE.fit(0).endswith("(Ctrl+G wraps up)")  # no width yet: the whole line


@given(
    width=st.integers(min_value=1, max_value=160),
    name=st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=60),
    speed=st.floats(min_value=0, max_value=500),
    live=st.booleans(),
)
def test_it_never_wraps(width: int, name: str, speed: float, live: bool) -> None:
    status = Status(
        model=name,
        placement="CPU",
        ctx_used=10,
        ctx_size=4096,
        tokens_per_s=speed,
        state="thinking…" if live else "",
        hint="Ctrl+G wraps up" if live else "",
    )
    line = status.fit(width)
    assert len(line) <= width and "\n" not in line


def test_a_server_keeps_its_name_when_its_address_does_not_fit() -> None:
    remote = Status(
        model="lab:deepseek-ai/DeepSeek-R1",
        placement="vllm 0.19.1 at http://127.0.0.1:38531/v1",
        short_placement="vllm 0.19.1",
        tokens_per_s=31.5,
    )
    assert remote.fit(100) == (
        "lab:deepseek-ai/DeepSeek-R1 · vllm 0.19.1 at http://127.0.0.1:38531/v1 · 31.5 tok/s"
    )
    assert remote.fit(60) == "lab:deepseek-ai/DeepSeek-R1 · vllm 0.19.1 · 31.5 tok/s"
