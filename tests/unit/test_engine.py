"""The llama.cpp engine on the real Gemma 3 270M GGUF: no fakes here."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ponder import gguf_info
from ponder.engine import GenerationStats, LlamaEngine, LoadParams, SamplingParams
from ponder.errors import ContextOverflowError, ExitCode, ModelLoadError, UsageError

pytestmark = pytest.mark.real_model

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def engine(gemma_path: Path) -> Iterator[LlamaEngine]:
    loaded = LlamaEngine.load(gguf_info.inspect(gemma_path), LoadParams(n_ctx=2048, n_threads=2))
    yield loaded
    loaded.close()


def _run(
    engine: LlamaEngine,
    prompt: str,
    sampling: SamplingParams,
    cancel: threading.Event | None = None,
) -> tuple[str, GenerationStats]:
    stats = GenerationStats()
    tokens = engine.tokenize(prompt, add_bos=True)
    return "".join(engine.generate(tokens, sampling, stats, cancel)), stats


def test_load_uses_the_planned_context_not_the_512_default(engine: LlamaEngine) -> None:
    assert engine.n_ctx == 2048
    assert engine.bos_text == "<bos>" and engine.add_bos


def test_greedy_generation_is_deterministic_and_stops_at_max_tokens(engine: LlamaEngine) -> None:
    greedy = SamplingParams(temperature=0.0, max_tokens=24)
    first, stats = _run(engine, PROMPT, greedy)
    second, _ = _run(engine, PROMPT, greedy)
    assert first == second
    assert first.strip()
    assert stats.completion_tokens == 24 and stats.finish_reason == "length"


def test_seed_is_honoured(engine: LlamaEngine) -> None:
    def sample(seed: int) -> str:
        return _run(
            engine,
            PROMPT,
            SamplingParams(temperature=1.2, top_k=0, top_p=1.0, seed=seed, max_tokens=30),
        )[0]

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_grammar_forces_a_think_block(engine: LlamaEngine) -> None:
    grammar = 'root ::= "<think>" [a-z ]{8,40} "</think>" [A-Za-z ]{2,20} "."'
    text, stats = _run(
        engine, "Q: what is two plus two?\nA:", SamplingParams(grammar=grammar, seed=3)
    )
    assert re.fullmatch(r"<think>[a-z ]{8,40}</think>[A-Za-z ]{2,20}\.", text), text
    assert stats.finish_reason == "stop"


def test_multibyte_characters_split_across_tokens_come_out_whole(engine: LlamaEngine) -> None:
    expected = "é日本語🙂ß"
    grammar = f'root ::= "{expected}"'
    text, stats = _run(engine, "Say it:", SamplingParams(grammar=grammar, temperature=0.0))
    assert text == expected
    assert stats.completion_tokens >= 2


def test_bad_grammar_is_a_usage_error(engine: LlamaEngine) -> None:
    with pytest.raises(UsageError, match="grammar"):
        _run(engine, PROMPT, SamplingParams(grammar="root ::= (unclosed"))


def test_cancel_stops_within_one_token(engine: LlamaEngine) -> None:
    cancel = threading.Event()
    stats = GenerationStats()
    seen = 0
    for _ in engine.generate(
        engine.tokenize(PROMPT, add_bos=True),
        SamplingParams(max_tokens=200, ignore_eos=True),
        stats,
        cancel,
    ):
        seen += 1
        if seen == 7:
            cancel.set()
    assert seen == 7 and stats.completion_tokens == 7
    assert stats.finish_reason == "interrupted"


def test_second_turn_reuses_the_kv_prefix(engine: LlamaEngine) -> None:
    first_prompt = "User: Tell me about the river Seine.\nAssistant:"
    _, first = _run(engine, first_prompt, SamplingParams(temperature=0.0, max_tokens=8))
    follow_up = first_prompt + " It flows through Paris.\nUser: And the Loire?\nAssistant:"
    _, second = _run(engine, follow_up, SamplingParams(temperature=0.0, max_tokens=8))
    assert second.cached_tokens >= first.prompt_tokens - 1
    assert second.prompt_tokens > first.prompt_tokens


def test_prompt_longer_than_the_context_is_refused(gemma_path: Path) -> None:
    small = LlamaEngine.load(gguf_info.inspect(gemma_path), LoadParams(n_ctx=64, n_threads=2))
    try:
        with pytest.raises(ContextOverflowError) as info:
            _run(small, "word " * 200, SamplingParams(max_tokens=4))
        assert info.value.exit_code == ExitCode.CONTEXT_OVERFLOW
        assert "context holds 64" in str(info.value)
    finally:
        small.close()


def test_reaching_the_end_of_the_context_finishes_with_length(gemma_path: Path) -> None:
    small = LlamaEngine.load(gguf_info.inspect(gemma_path), LoadParams(n_ctx=64, n_threads=2))
    try:
        _, stats = _run(small, PROMPT, SamplingParams(ignore_eos=True))
        assert stats.finish_reason == "length"
        assert stats.prompt_tokens + stats.completion_tokens <= 64
    finally:
        small.close()


def test_a_gguf_llama_cpp_cannot_load_is_a_model_load_error(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "alien.gguf"
    writer = gguf.GGUFWriter(str(path), "alien-arch")
    writer.add_block_count(1)
    writer.add_context_length(128)
    writer.add_embedding_length(8)
    writer.add_head_count(1)
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError) as info:
        LlamaEngine.load(gguf_info.inspect(path), LoadParams(n_ctx=128))
    assert info.value.exit_code == ExitCode.MODEL_LOAD
    assert "alien.gguf" in str(info.value)


def test_llama_log_keeps_the_buffer_sizes_not_the_per_tensor_debug_lines(
    engine: LlamaEngine, gemma_path: Path
) -> None:
    from ponder.engine import LLAMA_LOG

    again = LlamaEngine.load(gguf_info.inspect(gemma_path), LoadParams(n_ctx=512, n_threads=2))
    try:
        kept = "".join(LLAMA_LOG)
        for what in ("model buffer size", "KV buffer size", "compute buffer size"):
            assert what in kept, what
        assert "create_tensor" not in kept
    finally:
        again.close()


def test_injected_text_is_yielded_and_the_model_goes_on_from_it(engine: LlamaEngine) -> None:
    asked = 0

    def inject() -> str | None:
        nonlocal asked
        asked += 1
        return " Paris, and the capital of Italy is" if asked == 3 else None

    stats = GenerationStats()
    tokens = engine.tokenize(PROMPT, add_bos=True)
    greedy = SamplingParams(temperature=0.0, max_tokens=12)
    pieces = list(engine.generate(tokens, greedy, stats, None, inject))
    text = "".join(pieces)
    assert " Paris, and the capital of Italy is" in pieces  # yielded as one piece
    assert stats.completion_tokens == 12  # the injected tokens are not counted
    after = text.split("the capital of Italy is", 1)[1]
    assert after.strip(), text  # the model continued after the injection
    plain = "".join(engine.generate(tokens, greedy, GenerationStats()))
    before = text.split(" Paris, and the capital of Italy is", 1)[0]
    assert plain.startswith(before) and len(before) > 0  # the same three tokens came first


def test_nothing_is_injected_under_a_grammar(engine: LlamaEngine) -> None:
    stats = GenerationStats()
    grammar = 'root ::= "<think>" [a-z ]{5,10} "</think>" [a-z]{2,5}\n'
    tokens = engine.tokenize(PROMPT, add_bos=True)
    text = "".join(
        engine.generate(tokens, SamplingParams(grammar=grammar, seed=1), stats, None, lambda: "X")
    )
    assert "X" not in text and re.fullmatch(r"<think>[a-z ]{5,10}</think>[a-z]{2,5}", text)


@pytest.mark.parametrize("add_bos", [True, False])
def test_tokenize_agrees_with_llama_cpp_python(engine: LlamaEngine, add_bos: bool) -> None:
    # our own llama_tokenize call (a buffer sized by the text, not the trained context)
    text = "<start_of_turn>user\nnaïve 日本語 🎉 " + "word " * 300 + "<end_of_turn>"
    expected = engine._llama.tokenize(text.encode(), add_bos=add_bos, special=True)
    assert engine.tokenize(text, add_bos=add_bos) == expected
    assert engine.tokenize("", add_bos=add_bos) == ([expected[0]] if add_bos else [])
