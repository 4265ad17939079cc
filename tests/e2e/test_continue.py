"""A chat continued in a fresh process starts from its saved KV state, on the real model.

The engine part shows that a restored state answers exactly as the context that made
it would have, and that a cut a sliding window cannot go on from is refused (Gemma 3
keeps only 512 positions in five layers of six). The CLI part runs `ponder run` and
`ponder run -c` as a user does: the second run reuses the first one's prompt, other
load parameters or another model file reuse nothing, and `ponder chats rm` deletes
the chat's state.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder import gguf_info
from ponder.engine import GenerationStats, LlamaEngine, LoadParams, SamplingParams
from ponder.session.continuation import reuse_safely
from support.cli import ponder

pytestmark = pytest.mark.real_model

GREEDY = SamplingParams(temperature=0.0, max_tokens=12)
STORY = "The keeper of the lighthouse wrote in his log every night, and the sea answered. "


@pytest.fixture(scope="module")
def engines(gemma_path: Path) -> Iterator[tuple[LlamaEngine, LlamaEngine]]:
    info = gguf_info.inspect(gemma_path)
    params = LoadParams(n_ctx=2048, n_threads=2)
    first, second = LlamaEngine.load(info, params), LlamaEngine.load(info, params)
    yield first, second
    first.close()
    second.close()


def _say(engine: LlamaEngine, tokens: list[int]) -> tuple[str, GenerationStats]:
    stats = GenerationStats()
    return "".join(engine.generate(tokens, GREEDY, stats)), stats


def test_a_restored_state_answers_as_the_context_that_made_it(
    engines: tuple[LlamaEngine, LlamaEngine],
) -> None:
    made, fresh = engines
    prompt = made.tokenize(STORY * 4 + "Tonight he wrote:", add_bos=True)
    said, _ = _say(made, prompt)
    assert said.strip()
    state = made.save_state()
    assert state is not None and state.tokens[: len(prompt)] == tuple(prompt)
    # The same context reused in place: all but the last prompt token come from the
    # cache, and that one is evaluated again (alone, for its logits). The restored
    # state takes the same path in another context, so it must say the same. (Not
    # always what the first run said: a token evaluated alone and one evaluated in a
    # batch of hundreds can differ in the last bits, and greedy decoding may follow.)
    again, _ = _say(made, prompt)
    copy = type(state)(state.tokens, bytearray(state.data))
    assert fresh.load_state(copy, keep=len(prompt) - 1)
    restored, stats = _say(fresh, prompt)
    assert restored == again
    assert stats.cached_tokens == len(prompt) - 1


def test_a_cut_behind_the_sliding_window_is_refused(
    engines: tuple[LlamaEngine, LlamaEngine],
) -> None:
    made, fresh = engines
    long = made.tokenize(STORY * 45, add_bos=True)
    assert len(long) > 700  # past Gemma 3's 512-token window
    _say(made, long)
    state = made.save_state()
    assert state is not None
    copy = type(state)(state.tokens, bytearray(state.data))
    assert not fresh.load_state(copy, keep=100)
    assert fresh.cached_tokens() == []
    # Kept whole, it goes on: a state holds its last window (llama.cpp writes no cell
    # the last position does not attend to), and the next token needs just that.
    assert fresh.load_state(copy, keep=len(state.tokens))
    assert fresh.cached_tokens() == list(state.tokens)
    # A live context keeps every cell, so it may be cut anywhere; a restored one holds
    # only the last window, so a new prompt sharing just its start empties the cache
    # rather than reusing 100 tokens whose window is gone.
    assert made.keep_prefix(100) and made.cached_tokens() == long[:100]
    assert not fresh.keep_prefix(100)
    other = long[:100] + fresh.tokenize(" A different tale.", add_bos=False)
    assert reuse_safely(fresh, other) == 0
    assert fresh.cached_tokens() == []


def _run(
    model: Path, grammars: dict[str, Path], env: dict[str, str], *extra: str
) -> dict[str, object]:
    result: subprocess.CompletedProcess[str] = ponder(
        "run", model, "--grammar", grammars["prefilled"], "--seed", "1", "--json", *extra, env=env
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


def _usage(doc: dict[str, object]) -> dict[str, int]:
    usage = doc["usage"]
    assert isinstance(usage, dict)
    return usage


def _states(home: Path) -> list[Path]:
    return sorted((home / "cache" / "kv").glob("*.kvstate"))


def test_ponder_run_c_reuses_the_saved_prompt_and_chats_rm_deletes_it(
    r1_gemma: Path, grammars: dict[str, Path], ponder_env: dict[str, str], ponder_home: Path
) -> None:
    first = _run(r1_gemma, grammars, ponder_env, "--ctx", "2048", STORY * 6 + "What then?")
    (state,) = _states(ponder_home)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    second = _run(r1_gemma, grammars, ponder_env, "--ctx", "2048", "-c", "And after that?")
    assert second["chat_id"] == first["chat_id"]
    used = _usage(second)
    # The whole first prompt but its <think> prefill came from the state.
    assert used["cached_tokens"] >= _usage(first)["prompt_tokens"] - 4
    assert used["prompt_tokens"] - used["cached_tokens"] < 60
    removed = ponder("chats", "rm", str(first["chat_id"]), env=ponder_env)
    assert removed.returncode == 0, removed.stderr
    assert _states(ponder_home) == []


def test_other_parameters_or_another_model_file_reuse_nothing(
    r1_gemma: Path,
    grammars: dict[str, Path],
    ponder_env: dict[str, str],
    ponder_home: Path,
    tmp_path: Path,
) -> None:
    model = tmp_path / r1_gemma.name
    shutil.copyfile(r1_gemma, model)
    _run(model, grammars, ponder_env, "--ctx", "2048", STORY * 6 + "What then?")
    other_ctx = _run(model, grammars, ponder_env, "--ctx", "4096", "-c", "And after that?")
    assert _usage(other_ctx)["cached_tokens"] == 0
    # Another file at the same path (rewritten in place) is another model.
    before = model.stat()
    model.write_bytes(model.read_bytes())
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    rewritten = _run(model, grammars, ponder_env, "--ctx", "2048", "-c", "And then?")
    assert _usage(rewritten)["cached_tokens"] == 0
    off = dict(ponder_env, PONDER_KV_CACHE_MB="0")
    unsaved = _run(model, grammars, off, "--ctx", "2048", "-c", "Once more?")
    assert _usage(unsaved)["cached_tokens"] == 0
    # The states of the file as it was can never be used again: the sweep deleted them.
    (kept,) = _states(ponder_home)
    raw = kept.read_bytes()
    header = json.loads(raw[16 : 16 + int.from_bytes(raw[12:16], "little")])
    assert header["key"]["model"]["mtime_ns"] == model.stat().st_mtime_ns
