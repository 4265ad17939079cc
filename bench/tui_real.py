"""Part 2 of bench_tui.py: the real engine's decode speed in the TUI against `ponder run`
on the R1-1.5B-shaped GGUF, interleaved (bench_tui.py's docstring says how, and what the
target is).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import make_r1_shaped
import tui_common  # noqa: F401  (a sibling module; it puts tests/ on the path)
from ponder.hardware import render_plan
from support.tuikit import make_app
from tui_common import (
    PROMPT,
    SEED,
    SIZE,
    chat_screen,
    fresh_home,
    log,
    wait_for_model,
    wait_for_reply,
    with_max_tokens,
)

TARGET_RATIO = 0.95
SHAPED_NAME = "r1-shaped"


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
