"""The child side of bench_memory.py: load one model in a fresh process, evaluate a
prompt, decode a few tokens, and write what memory it took and llama.cpp's log.

Run by bench_memory.py as ``python memory_child.py SPEC OUT`` (both JSON files), once per
case, so each measurement starts from a process that has not imported llama.cpp yet: the
RSS baseline is taken before the import.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import psutil

from ponder import gguf_info

DECODE_TOKENS = 4
PROMPT_TEXT = (
    "Think step by step about how a bridge carries its load: the deck, the piers, "
    "the cables and the ground beneath them all share the work, and each one fails "
    "in its own way when it is asked to carry more than it was built for. "
)


def _status_kib(field_name: str) -> int | None:
    """A ``kB`` field of /proc/self/status (RssAnon, RssFile, ...); None off Linux."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == field_name:
                return int(value.split()[0])
    return None


def _maxrss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # Linux: KiB


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Load one model, evaluate a prompt, decode a few tokens; report memory and the log.

    Runs in a fresh process: the RSS baseline is taken before llama.cpp is imported.
    """
    rss_start = _rss()
    import llama_cpp  # noqa: F401  (measured: the library's own pages)

    import ponder.engine as engine
    import ponder.engine.llama as llama_engine

    rss_imported = _rss()
    # Unbounded (see bench_memory.py's docstring). The engine's module reads its own
    # global, so the deque is replaced there, not on the package that re-exports it.
    llama_engine.LLAMA_LOG = deque()
    info = gguf_info.inspect(spec["path"])
    params = engine.LoadParams(
        n_ctx=spec["n_ctx"],
        n_gpu_layers=0,
        n_threads=spec["n_threads"],
        n_threads_batch=spec["n_threads"],
        n_batch=spec["n_batch"],
        flash_attn=True,
        use_mmap=spec["use_mmap"],
    )
    started = time.monotonic()
    llm = engine.LlamaEngine.load(info, params)
    load_s = time.monotonic() - started
    load_log = list(llama_engine.LLAMA_LOG)
    rss_loaded = _rss()

    prompt = _prompt_tokens(llm, spec["prompt_tokens"])
    stats = engine.GenerationStats()
    sampling = engine.SamplingParams(seed=1, max_tokens=DECODE_TOKENS, ignore_eos=True)
    started = time.monotonic()
    for _ in llm.generate(prompt, sampling, stats):
        pass
    eval_s = time.monotonic() - started
    result = {
        "rss_start": rss_start,
        "rss_imported": rss_imported,
        "rss_loaded": rss_loaded,
        "rss_end": _rss(),
        "rss_anon_kib": _status_kib("RssAnon"),
        "rss_file_kib": _status_kib("RssFile"),
        "maxrss": _maxrss_bytes(),
        "load_s": load_s,
        "eval_s": eval_s,
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "load_log_lines": len(load_log),
        "log": list(llama_engine.LLAMA_LOG),
    }
    llm.close()
    return result


def _prompt_tokens(llm: Any, n_tokens: int) -> list[int]:
    text = PROMPT_TEXT
    tokens: list[int] = llm.tokenize(text, add_bos=llm.add_bos)
    while len(tokens) < n_tokens:
        text += PROMPT_TEXT
        tokens = llm.tokenize(text, add_bos=llm.add_bos)
    return tokens[: max(1, min(n_tokens, llm.n_ctx - DECODE_TOKENS - 1))]


def child_main(spec_path: Path, out_path: Path) -> int:
    spec = json.loads(spec_path.read_text())
    out_path.write_text(json.dumps(run_child(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(child_main(Path(sys.argv[1]), Path(sys.argv[2])))
