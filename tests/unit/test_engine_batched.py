"""generate_many: N candidates of one prompt in one llama.cpp context, on the real Gemma GGUF."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ponder import gguf_info
from ponder.engine import Batches, GenerationStats, LlamaEngine, LoadParams, SamplingParams
from ponder.errors import ContextOverflowError, UsageError

pytestmark = pytest.mark.real_model

PROMPT = "The capital of France is"
QUESTION = "Q: what is two plus two?\nA:"
TWO_ANSWERS = r'root ::= "<think>" [a-z ]{1,20} "</think>" ("\\boxed{4}" | "\\boxed{5}")'
TWO_ANSWERS_RE = re.compile(r"<think>[a-z ]{1,20}</think>\\boxed\{([45])\}")
GREEDY = SamplingParams(temperature=0.0, max_tokens=24)


@pytest.fixture(scope="module")
def engine(gemma_path: Path) -> Iterator[LlamaEngine]:
    loaded = LlamaEngine.load(gguf_info.inspect(gemma_path), LoadParams(n_ctx=2048, n_threads=2))
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def small(gemma_path: Path) -> Iterator[LlamaEngine]:
    """A 256-token context, for the tests of a full one."""
    loaded = LlamaEngine.load(gguf_info.inspect(gemma_path), LoadParams(n_ctx=256, n_threads=2))
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def narrow(gemma_path: Path) -> Iterator[LlamaEngine]:
    """3-token batches. llama.cpp needs a micro-batch of at least one token a sequence
    (it aborts otherwise), so this context has 3: the prompt's and 2 candidates'."""
    params = LoadParams(n_ctx=512, n_threads=2, n_batch=3)
    loaded = LlamaEngine.load(gguf_info.inspect(gemma_path), params)
    yield loaded
    loaded.close()


@dataclass
class Run:
    texts: list[str]
    events: list[tuple[int, str | None]]
    stats: list[GenerationStats]


def _many(
    engine: LlamaEngine,
    prompt: Sequence[int],
    samplings: Sequence[SamplingParams],
    cancel: threading.Event | None = None,
    inject: Callable[[int], str | None] | None = None,
    *,
    fresh: bool = False,
) -> Run:
    if fresh:
        engine.keep_prefix(0)  # the same cells as the run compared with (see _generate)
    stats = [GenerationStats() for _ in samplings]
    events = list(engine.generate_many(prompt, samplings, stats, cancel, inject))
    n = len(samplings)
    for i in range(n):
        mine = [text for j, text in events if j == i]
        assert mine.count(None) == 1 and mine[-1] is None, f"candidate {i}: {mine}"
    texts = ["".join(t for j, t in events if j == i and t is not None) for i in range(n)]
    _assert_only_the_prompt_is_held(engine, prompt)
    return Run(texts, events, stats)


def _assert_only_the_prompt_is_held(engine: LlamaEngine, prompt: Sequence[int]) -> None:
    llama, c = engine._llama, engine._c
    assert engine.cached_tokens() == list(prompt)
    mem = c.llama_get_memory(llama._ctx.ctx)
    assert int(c.llama_memory_seq_pos_max(mem, 0)) == len(prompt) - 1
    for seq in range(1, int(c.llama_n_seq_max(llama._ctx.ctx))):
        assert int(c.llama_memory_seq_pos_max(mem, seq)) == -1, f"seq {seq} left behind"


def _generate(engine: LlamaEngine, prompt: Sequence[int], sampling: SamplingParams) -> str:
    """One generate() from an empty cache.

    What is compared must start from the same cache: llama.cpp's CPU attention splits
    the cells it attends over between threads, so where a run's cells lie (after what
    earlier runs left) changes the logits in their last bits, and greedy may then pick
    the other of two near-equal tokens. Emptied, every run fills cells from 0 on.
    """
    engine.keep_prefix(0)
    return "".join(engine.generate(prompt, sampling, GenerationStats()))


def _tokens(engine: LlamaEngine, text: str = PROMPT) -> list[int]:
    return engine.tokenize(text, add_bos=True)


def test_the_context_holds_sixteen_candidates_and_its_full_size(engine: LlamaEngine) -> None:
    assert isinstance(engine, Batches)
    assert engine.max_sequences == 16
    # seq 0 keeps the prompt, the candidates run on 1..16; the KV cache is unified, so
    # seq 0 alone still has the whole context (llama.cpp would split it otherwise).
    assert int(engine._c.llama_n_seq_max(engine._llama._ctx.ctx)) == 17
    assert engine.n_ctx == 2048 and int(engine._llama.n_ctx()) == 2048


def test_grammar_holds_for_every_candidate_repeats_and_both_answers_appear(
    engine: LlamaEngine,
) -> None:
    prompt = _tokens(engine, QUESTION)
    base = SamplingParams(temperature=1.0, top_p=1.0, grammar=TWO_ANSWERS)
    # Candidate 7 keeps a repeat penalty, which puts the grammar in its chain instead of
    # checking the sampled token (ponder.engine.grammar): both ways are covered.
    samplings = [replace(base, seed=100 + i) for i in range(7)]
    samplings.append(replace(base, seed=107, repeat_penalty=1.1))
    first = _many(engine, prompt, samplings, fresh=True)
    answers = []
    for text, stats in zip(first.texts, first.stats, strict=True):
        match = TWO_ANSWERS_RE.fullmatch(text)
        assert match, text
        answers.append(match.group(1))
        assert stats.finish_reason == "stop"
    assert set(answers) == {"4", "5"}, first.texts
    assert _many(engine, prompt, samplings, fresh=True).texts == first.texts


def test_greedy_candidates_match_one_generate(engine: LlamaEngine) -> None:
    prompt = _tokens(engine)
    engine.keep_prefix(0)
    pieces = list(engine.generate(prompt, GREEDY, GenerationStats()))
    three = _many(engine, prompt, [GREEDY] * 3, fresh=True)
    assert three.texts == ["".join(pieces)] * 3
    assert all(s.completion_tokens == 24 and s.finish_reason == "length" for s in three.stats)
    # From 4 tokens a step, ggml's CPU matmul takes its batched (repacked gemm) path,
    # which adds in another order: the logits differ in their last bits, and greedy may
    # pick the other of two near-equal tokens after a while (after 12 tokens here). The
    # candidates still agree with each other, and with generate() on a prefix.
    four = _many(engine, prompt, [GREEDY] * 4, fresh=True)
    assert len(set(four.texts)) == 1
    assert [t for j, t in four.events if j == 0][:8] == pieces[:8]


def test_a_seeded_candidate_samples_like_generate_with_that_seed(engine: LlamaEngine) -> None:
    prompt = _tokens(engine)
    hot = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=20)
    seeds = [11, 12, 13]  # three: below the batched matmul path (see above)
    run = _many(engine, prompt, [replace(hot, seed=s) for s in seeds], fresh=True)
    assert len(set(run.texts)) == 3, run.texts  # independent: no two alike
    for seed, text in zip(seeds, run.texts, strict=True):
        assert text == _generate(engine, prompt, replace(hot, seed=seed))


def test_max_tokens_is_per_candidate_and_ignore_eos_goes_past_the_end(
    engine: LlamaEngine,
) -> None:
    # Gemma 270M (a base model) never stops on its own at temperature 0; a grammar ends
    # the text, after which only end-of-generation tokens are allowed.
    stops = SamplingParams(temperature=0.0, grammar='root ::= " Paris."', max_tokens=50)
    endless = replace(stops, ignore_eos=True, max_tokens=12)
    samplings = [replace(GREEDY, max_tokens=3), stops, endless, replace(GREEDY, max_tokens=7)]
    run = _many(engine, _tokens(engine), samplings)
    n = run.stats[1].completion_tokens
    assert run.texts[1] == " Paris." and 1 <= n < 12
    assert [s.completion_tokens for s in run.stats] == [3, n, 12, 7]
    assert [s.finish_reason for s in run.stats] == ["length", "stop", "length", "length"]
    assert run.texts[2].startswith(" Paris.")  # and end-of-generation tokens past it
    assert run.texts[3].startswith(run.texts[0])


def test_cancel_ends_every_candidate_interrupted_with_its_text_so_far(
    engine: LlamaEngine,
) -> None:
    prompt = _tokens(engine)
    cancel = threading.Event()
    stats = [GenerationStats() for _ in range(3)]
    hot = SamplingParams(temperature=1.0, max_tokens=200)
    samplings = [replace(hot, seed=s) for s in (1, 2, 3)]
    events = []
    for i, text in engine.generate_many(prompt, samplings, stats, cancel):
        events.append((i, text))
        if i == 0 and stats[0].completion_tokens == 5:
            cancel.set()
    assert [s.finish_reason for s in stats] == ["interrupted"] * 3
    assert all(5 <= s.completion_tokens <= 6 for s in stats), stats
    for i in range(3):
        assert "".join(t or "" for j, t in events if j == i).strip()
        assert [t for j, t in events if j == i][-1] is None
    _assert_only_the_prompt_is_held(engine, prompt)


def test_closing_the_iterator_early_leaves_only_the_prompt(engine: LlamaEngine) -> None:
    prompt = _tokens(engine)
    stats = [GenerationStats() for _ in range(4)]
    events = engine.generate_many(prompt, [GREEDY] * 4, stats)
    for _ in range(6):
        next(events)
    events.close()  # type: ignore[attr-defined]
    assert all(s.finish_reason == "interrupted" for s in stats)
    _assert_only_the_prompt_is_held(engine, prompt)
    after = GenerationStats()
    assert "".join(engine.generate(prompt, GREEDY, after)).strip()
    assert after.cached_tokens == len(prompt) and after.completion_tokens == 24


def test_afterwards_generate_reuses_the_whole_prompt_and_the_state_is_the_prompt(
    engine: LlamaEngine,
) -> None:
    prompt = _tokens(engine, "Once upon a time, in a land far away,")
    run = _many(engine, prompt, [replace(GREEDY, seed=s, temperature=0.8) for s in (1, 2)])
    assert [s.prompt_tokens for s in run.stats] == [len(prompt)] * 2
    state = engine.save_state()
    assert state is not None and state.tokens == tuple(prompt)
    again = _many(engine, prompt, [GREEDY])
    assert again.stats[0].cached_tokens == len(prompt)
    longer = prompt + engine.tokenize(" there lived", add_bos=False)
    more = _many(engine, longer, [GREEDY, GREEDY])  # a continued chat: only its new tokens
    assert [s.cached_tokens for s in more.stats] == [len(prompt)] * 2
    stats = GenerationStats()
    "".join(engine.generate(longer, GREEDY, stats))
    assert stats.cached_tokens == len(longer)


def test_inject_changes_only_its_own_candidate(engine: LlamaEngine) -> None:
    prompt = _tokens(engine)
    injected = " Rome, not Paris."
    asked: list[int] = []

    def inject(i: int) -> str | None:
        asked.append(i)
        return injected if i == 1 and asked.count(1) == 3 else None

    run = _many(engine, prompt, [GREEDY] * 3, inject=inject, fresh=True)
    alone = _generate(engine, prompt, GREEDY)
    assert run.texts[0] == run.texts[2] == alone
    mine = [t for j, t in run.events if j == 1]
    at = mine.index(injected)
    assert at == 3, mine  # right after the token that asked
    assert run.texts[1].startswith("".join(mine[:3]) + injected)
    assert run.texts[1] != alone
    assert run.stats[1].completion_tokens == 24  # injected tokens are not counted
    assert set(asked) == {0, 1, 2}


def test_nothing_is_injected_under_a_grammar(engine: LlamaEngine) -> None:
    prompt = _tokens(engine, QUESTION)
    asked: list[int] = []

    def inject(i: int) -> str | None:
        asked.append(i)
        return "junk"

    grammar = SamplingParams(temperature=1.0, seed=1, grammar=TWO_ANSWERS)
    run = _many(engine, prompt, [grammar, replace(GREEDY, max_tokens=4)], inject=inject)
    assert TWO_ANSWERS_RE.fullmatch(run.texts[0]), run.texts[0]
    assert set(asked) == {1}


def test_one_candidate_works_and_seventeen_are_refused(engine: LlamaEngine) -> None:
    prompt = _tokens(engine)
    run = _many(engine, prompt, [GREEDY], fresh=True)
    assert run.texts == [_generate(engine, prompt, GREEDY)]
    with pytest.raises(ValueError, match="17 candidates"):
        engine.generate_many(prompt, [GREEDY] * 17, [GenerationStats() for _ in range(17)])
    with pytest.raises(ValueError):
        engine.generate_many(prompt, [], [])
    with pytest.raises(ValueError, match="stats"):
        engine.generate_many(prompt, [GREEDY] * 2, [GenerationStats()])


def test_a_bad_grammar_or_a_long_prompt_is_refused_before_anything_runs(
    engine: LlamaEngine,
) -> None:
    prompt = _tokens(engine)
    _many(engine, prompt, [GREEDY])
    bad = replace(GREEDY, grammar='root ::= "unterminated')
    with pytest.raises(UsageError, match="grammar"):
        engine.generate_many(prompt, [GREEDY, bad], [GenerationStats(), GenerationStats()])
    with pytest.raises(ContextOverflowError):
        engine.generate_many([1] * 2048, [GREEDY], [GenerationStats()])
    assert engine.cached_tokens() == prompt  # nothing ran


def test_a_full_context_ends_the_candidates_with_length(small: LlamaEngine) -> None:
    prompt = _tokens(small)
    endless = SamplingParams(temperature=1.0, ignore_eos=True)
    run = _many(small, prompt, [replace(endless, seed=s) for s in range(16)])
    assert all(s.finish_reason == "length" for s in run.stats)
    used = len(prompt) + sum(s.completion_tokens for s in run.stats)
    assert 256 - 16 <= used <= 256 + 16, used  # the last step's tokens are never decoded


def test_steps_wider_than_a_batch_are_decoded_in_pieces(narrow: LlamaEngine) -> None:
    assert narrow.max_sequences == 2  # not 16: the batch is too small for more
    prompt = _tokens(narrow)
    injected = " and then, after that,"
    greedy = replace(GREEDY, max_tokens=10)
    asked: list[bool] = []
    # The step after the injection holds 1 + 1 + len(injected's tokens) > 3 tokens.
    run = _many(narrow, prompt, [greedy, greedy], inject=lambda i: _once(i, asked), fresh=True)
    assert run.texts[0] == _generate(narrow, prompt, greedy)
    narrow.keep_prefix(0)
    calls: list[bool] = []
    alone = "".join(
        narrow.generate(prompt, greedy, GenerationStats(), None, lambda: _once(1, calls))
    )
    assert run.texts[1] == alone and injected in alone


def _once(i: int, asked: list[bool]) -> str | None:
    """The injection: once, for candidate 1, after its second token."""
    if i != 1:
        return None
    asked.append(True)
    return " and then, after that," if len(asked) == 2 else None


def test_a_decode_with_no_room_ends_the_candidates_with_length(small: LlamaEngine) -> None:
    # The engine thinks it has more room than llama.cpp's cache: llama_decode returns 1.
    prompt = _tokens(small)
    small._n_ctx = 100_000
    try:
        endless = SamplingParams(temperature=1.0, ignore_eos=True)
        run = _many(small, prompt, [replace(endless, seed=s) for s in range(4)])
    finally:
        small._n_ctx = 256
    assert all(s.finish_reason == "length" for s in run.stats)
    assert len(prompt) + sum(s.completion_tokens for s in run.stats) > 256
    assert _generate(small, prompt, GREEDY)  # the context still works
