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

Part 1 is ``tui_scripted.py``, part 2 ``tui_real.py``, and what they share
``tui_common.py``; this file runs them.

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
import importlib.metadata
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from tui_common import fresh_home, log  # noqa: E402  (sibling modules, not a package)
from tui_real import bench_real  # noqa: E402
from tui_scripted import make_script, r1_gemma, report_scripted, scripted_run  # noqa: E402

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
