"""A grammar checked on the sampled token (ponder.engine.grammar), on the real Gemma GGUF.

The speed it buys is ``bench/bench_generate.py --grammar``'s to show; here: the text
always matches the grammar, whichever path sampled it, a seed still repeats, the
sampler chain of llama-cpp-python is left as it was found, and the grammar's sampler is
freed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ponder import gguf_info
from ponder.engine import GenerationStats, LlamaEngine, LoadParams, SamplingParams
from ponder.engine import grammar as engine_grammar

pytestmark = pytest.mark.real_model

GRAMMAR = 'root ::= "<think>" [a-z ]{8,40} "</think>" [A-Za-z ]{2,20} "."\n'
SHAPE = re.compile(r"<think>[a-z ]{8,40}</think>[A-Za-z ]{2,20}\.")


@pytest.fixture(scope="module")
def engine(gemma_path: Path) -> Iterator[LlamaEngine]:
    loaded = LlamaEngine.load(gguf_info.inspect(gemma_path), LoadParams(n_ctx=2048, n_threads=2))
    yield loaded
    loaded.close()


def _run(engine: LlamaEngine, sampling: SamplingParams) -> str:
    tokens = engine.tokenize("Q: what is two plus two?\nA:", add_bos=True)
    return "".join(engine.generate(tokens, sampling, GenerationStats()))


def test_the_text_matches_the_grammar_and_a_seed_repeats(
    engine: LlamaEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[engine_grammar.RejectionSampler] = []
    real = engine_grammar.RejectionSampler

    def keep(*args: Any) -> engine_grammar.RejectionSampler:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(engine_grammar, "RejectionSampler", keep)
    texts = [_run(engine, SamplingParams(grammar=GRAMMAR, seed=seed)) for seed in (1, 2, 3)]
    for text in texts:
        assert SHAPE.fullmatch(text), text
    assert _run(engine, SamplingParams(grammar=GRAMMAR, seed=1)) == texts[0]
    assert len(made) == 4  # the rejection path sampled every one
    # Gemma, a base model, does not write "<think>" unasked: the grammar refused its
    # first choices, and those tokens were sampled again with the grammar first.
    assert all(sampler.refused > 0 for sampler in made)
    assert all(sampler._full is None for sampler in made)  # freed when the reply ended
    assert "_init_sampler" not in vars(engine._llama)  # llama-cpp-python's own again


def test_a_repeat_penalty_puts_the_grammar_in_the_chain(
    engine: LlamaEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("a repeat penalty keeps a history a refused token would spoil")

    monkeypatch.setattr(engine_grammar, "RejectionSampler", refuse)
    penalised = SamplingParams(grammar=GRAMMAR, seed=1, repeat_penalty=1.3)
    assert not engine_grammar.rejection_applies(penalised)
    assert SHAPE.fullmatch(_run(engine, penalised))


def test_greedy_and_plain_replies_after_a_grammar(engine: LlamaEngine) -> None:
    exact = 'root ::= "Paris is the capital of France."\n'
    text = _run(engine, SamplingParams(grammar=exact, temperature=0.0))
    assert text == "Paris is the capital of France."
    plain = _run(engine, SamplingParams(temperature=0.0, max_tokens=8))
    assert plain and "_init_sampler" not in vars(engine._llama)
