"""Predicted against measured speed: the planner's tokens/s against llama.cpp's, here.

Why: ``ponder fit``, the welcome screen and ``ponder setup`` rank models by the speed
the planner predicts (docs/architecture.md#speed-estimate), so a prediction that is far
off recommends a model that thinks for five minutes. This runs the models and compares.

For each model (Gemma 3 270M, and the GGUF shaped like DeepSeek-R1-Distill-Qwen-1.5B
that ``make_r1_shaped.py`` builds):

* **the plan** is the one ``ponder run`` would make here: ``Session.plan`` on this
  machine's probe, with the RAM bandwidth measured once and remembered
  (``<cache dir>/bandwidth.json``), the context from ``--ctx`` and the planner's threads
  (or ``--threads``);
* **predicted**: ``plan.speed``: decode tokens/s at the middle of the measured stretch
  (``decode_at(prompt + N/2)``) and prompt tokens/s;
* **measured**: the model loaded with exactly the plan's parameters (``LlamaEngine``,
  as ``ponder run`` loads it); prompt tokens/s is a ``--prompt-tokens`` prompt over the
  time to its first token (each repeat starts with a different word, so no KV prefix is
  reused), decode tokens/s is ``--tokens`` tokens past end-of-generation, timed token by
  token after the first.

Repeats alternate the models. The prediction is for a machine that is not running
anything else, and on a shared machine other processes only ever slow a run down, so
the verdict compares it with the fastest repeat, and for decoding with one over that
repeat's median token time (a stall of another process cannot move a median). The
median repeat's wall-clock rate is printed beside it. Target: every prediction within
±30 % of the measurement. The bandwidth is also measured afresh at the start, to
show how far the remembered figure is from this moment's.

Usage: ``.venv/bin/python bench/bench_predict.py [--models gemma r1shaped] [--tokens 256]
[--prompt-tokens 512] [--repeats 3] [--ctx 4096] [--threads N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import make_r1_shaped  # noqa: E402  (a sibling script, not a package)
from bench_generate import MODEL_LABELS, model_path  # noqa: E402

TARGET = 0.30  # within ±30 %
WORDS = ("apple", "river", "stone", "cloud", "ember", "maple", "orbit", "quartz", "willow")


@dataclass(slots=True)
class Measured:
    decode: list[float] = field(default_factory=list)  # wall clock, per repeat
    robust: list[float] = field(default_factory=list)  # 1 / the median token's time
    prompt: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Subject:
    label: str
    plan_text: str
    engine: object
    predicted_decode: float
    predicted_prompt: float
    short_prompt: list[int]
    measured: Measured = field(default_factory=Measured)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def prompt_of(engine: object, n_tokens: int, first: str) -> list[int]:
    """A prompt of about ``n_tokens`` tokens that starts with ``first``."""
    text = first + ": " + " ".join(WORDS[i % len(WORDS)] for i in range(n_tokens))
    tokens: list[int] = engine.tokenize(text, add_bos=True)  # type: ignore[attr-defined]
    return tokens[:n_tokens]


def prepare(name: str, args: argparse.Namespace, workdir: Path) -> Subject:
    from ponder.catalog import load_catalog
    from ponder.config import Settings
    from ponder.engine import LlamaEngine
    from ponder.paths import Paths
    from ponder.session import ModelOptions, Session
    from ponder.session.loading import load_params

    path = model_path(name)
    paths = Paths(config_dir=workdir / "c", data_dir=workdir / "d", cache_dir=workdir / "k")
    session = Session(settings=Settings(), paths=paths, catalog=load_catalog())
    spec = session.resolve(str(path))
    plan = session.plan(spec, ModelOptions(n_ctx=args.ctx, n_threads=args.threads))
    if plan.speed is None:
        raise RuntimeError(f"no speed predicted for {path.name}")
    from ponder import hardware

    engine = LlamaEngine.load(spec.info, load_params(plan))
    short = prompt_of(engine, 32, "Start")
    middle = len(short) + args.tokens // 2
    return Subject(
        label=MODEL_LABELS[name],
        plan_text=hardware.render_plan(plan),
        engine=engine,
        predicted_decode=plan.speed.decode_at(middle),
        predicted_prompt=plan.speed.prompt_tok_s,
        short_prompt=short,
    )


def measure_once(subject: Subject, args: argparse.Namespace, rep: int) -> None:
    from ponder.engine.base import GenerationStats
    from ponder.sampling import SamplingParams

    engine = subject.engine
    one = replace(SamplingParams(), max_tokens=1, seed=1)
    prompt = prompt_of(engine, args.prompt_tokens, WORDS[rep % len(WORDS)].title() + str(rep))
    stats = GenerationStats()
    for _ in engine.generate(prompt, one, stats):  # type: ignore[attr-defined]
        pass
    subject.measured.prompt.append(len(prompt) / stats.prompt_eval_s)
    many = replace(
        SamplingParams(), max_tokens=args.tokens, seed=1, ignore_eos=True, temperature=0.6
    )
    stats = GenerationStats()
    started = time.monotonic()
    steps: list[float] = []
    tokens = iter(engine.generate(subject.short_prompt, many, stats))  # type: ignore[attr-defined]
    next(tokens)  # the first token: prompt time, untimed
    while True:
        before = time.perf_counter()
        try:
            next(tokens)
        except StopIteration:
            break
        steps.append(time.perf_counter() - before)
    took = time.monotonic() - started
    rate = (stats.completion_tokens - 1) / stats.decode_s
    robust = 1 / statistics.median(steps)
    subject.measured.decode.append(rate)
    subject.measured.robust.append(robust)
    log(
        f"[{subject.label}] repeat {rep + 1}: prompt {len(prompt)} tok at "
        f"{subject.measured.prompt[-1]:.1f} tok/s; decode {stats.completion_tokens} tok at "
        f"{rate:.2f} tok/s, median token {robust:.2f} tok/s ({took:.1f} s)"
    )


def verdict(measured: float, predicted: float) -> tuple[float, str]:
    ratio = predicted / measured if measured > 0 else float("nan")
    return ratio, "PASS" if abs(ratio - 1) <= TARGET else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", choices=sorted(MODEL_LABELS), default=["gemma", "r1shaped"]
    )
    parser.add_argument("--tokens", type=int, default=256, help="decode tokens per repeat")
    parser.add_argument("--prompt-tokens", type=int, default=512, help="prompt tokens per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ctx", type=int, default=4096, help="context to plan and load with")
    parser.add_argument("--threads", type=int, default=None, help="default: the planner's")
    args = parser.parse_args(argv)

    from ponder import hardware
    from ponder.session.loading import probes

    make_r1_shaped.quiet_llama_log()
    started = time.monotonic()
    hw = hardware.probe(probes(), os_gpus=False)  # the remembered bandwidth (or measured now)
    fresh = hardware.measure_ram_bandwidth(hw.performance_cores)
    with tempfile.TemporaryDirectory(prefix="ponder-bench-") as tmp:
        subjects = [prepare(name, args, Path(tmp) / name) for name in args.models]
        for subject in subjects:  # untimed warm-up: page the weights in
            measure_once(subject, replace_args(args, tokens=16, prompt_tokens=64), 99)
            subject.measured = Measured()
        for rep in range(args.repeats):
            for subject in subjects if rep % 2 == 0 else subjects[::-1]:
                measure_once(subject, args, rep)
        for subject in subjects:
            subject.engine.close()  # type: ignore[attr-defined]

    remembered = hw.memory_bandwidth
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} logical cores, "
        f"{hw.performance_cores} performance cores; {hw.cpu_model}"
    )
    print(
        "RAM read bandwidth: "
        + (f"remembered {remembered / 1e9:.1f} GB/s" if remembered else "not measured")
        + (f", measured now {fresh / 1e9:.1f} GB/s" if fresh else "")
        + f" ({hw.performance_cores} threads)"
    )
    print(f"decode: {args.tokens} tokens after 32 prompt tokens; prompt: {args.prompt_tokens}")
    print(
        f"{args.repeats} repeats. The prediction is for the machine to itself: other processes"
        " only ever slow a run down, so the verdict takes the fastest repeat (decode: one over"
        " its median token's time, which a stall cannot move); the median repeat's wall-clock"
        " rate is shown beside it."
    )
    print(f"target: predicted within ±{TARGET:.0%} of measured")
    print()
    header = (
        f"{'model':<14} {'what':<7} {'median wall':>11} {'measured':>9} {'predicted':>9} "
        f"{'predicted/measured':>18}  verdict"
    )
    print(header)
    print("-" * len(header))
    failed = 0
    for subject in subjects:
        m = subject.measured
        for what, wall, measured, predicted in (
            ("decode", statistics.median(m.decode), max(m.robust), subject.predicted_decode),
            ("prompt", statistics.median(m.prompt), max(m.prompt), subject.predicted_prompt),
        ):
            ratio, status = verdict(measured, predicted)
            failed += status == "FAIL"
            print(
                f"{subject.label:<14} {what:<7} {wall:>11.2f} {measured:>9.2f} {predicted:>9.2f} "
                f"{ratio:>18.3f}  {status}"
            )
    print()
    for subject in subjects:
        print(f"[{subject.label}] {subject.plan_text}")
    print()
    print(f"target: all within ±{TARGET:.0%}: {'PASS' if not failed else f'FAIL ({failed})'}")
    print(f"wall time: {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


def replace_args(args: argparse.Namespace, **changes: int) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), **changes})


if __name__ == "__main__":
    sys.exit(main())
