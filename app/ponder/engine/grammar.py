"""A GBNF grammar in the sampler, the way llama.cpp's own tools apply it.

llama-cpp-python puts the grammar in its sampler chain ahead of top-k, so every token
the grammar checks the whole vocabulary: for Gemma 3's 262,144 entries that is 40-90 ms
of one core per token here (``llama_sampler_apply`` timed alone), five times the
model's own decode, and it bounds ``ponder run --grammar`` and ``Llama.generate`` alike.
llama.cpp's ``common_sampler_sample`` (``grammar_first = false``, what llama-server and
llama-cli do) samples with the plain chain first and asks the grammar about that one
token; only when the grammar refuses it does it sample again with the grammar applied
to every candidate. :class:`RejectionSampler` does the same through the C API, so the
text still always matches the grammar, and a token costs one grammar check where the
model already writes what the grammar allows.

Used only when the chain keeps no history that a refused token would spoil (a repeat
penalty of 1: the penalty sampler records every token it is told about); otherwise the
grammar goes in the chain as llama-cpp-python puts it.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
from typing import Any

from ponder.sampling import SamplingParams


def _lib() -> Any:
    import llama_cpp

    return llama_cpp


def rejection_applies(sampling: SamplingParams) -> bool:
    """Whether :class:`RejectionSampler` may stand in for the grammar in the chain."""
    return sampling.repeat_penalty == 1.0


class RejectionSampler:
    """What ``Llama.generate`` samples with (it calls ``sample(ctx, idx)``): the plain
    chain, the grammar checked on the sampled token, the grammar-first chain when the
    grammar refuses it. Owns ``grammar`` (a ``llama_sampler`` pointer) from here on."""

    def __init__(self, plain: Any, grammar: Any, sampling: SamplingParams, seed: int) -> None:
        c = _lib()
        self._c = c
        self._plain = plain  # llama-cpp-python's LlamaSampler, built without the grammar
        self._grammar = grammar
        self._full = c.llama_sampler_chain_init(c.llama_sampler_chain_default_params())
        c.llama_sampler_chain_add(self._full, grammar)  # shared: removed again in close()
        for sampler in rest_of_chain(c, sampling, seed):
            c.llama_sampler_chain_add(self._full, sampler)
        self._one = c.llama_token_data(0, 1.0, 0.0)
        self._array = c.llama_token_data_array(ctypes.pointer(self._one), 1, -1, False)
        self.refused = 0  # tokens sampled again with the grammar first

    def sample(self, ctx: Any, idx: int = -1) -> int:
        c = self._c
        token = int(self._plain.sample(ctx, idx))
        self._one.id, self._one.logit, self._one.p = token, 1.0, 0.0
        self._array.size, self._array.selected, self._array.sorted = 1, -1, False
        c.llama_sampler_apply(self._grammar, ctypes.byref(self._array))
        if self._one.logit != -math.inf:
            c.llama_sampler_accept(self._grammar, token)
            return token
        self.refused += 1
        # Every candidate through the grammar, then the chain; accepted into the grammar.
        return int(c.llama_sampler_sample(self._full, ctx.ctx, idx))

    def close(self) -> None:
        if self._full is None:
            return
        c = self._c
        c.llama_sampler_chain_remove(self._full, 0)  # the grammar is freed on its own
        c.llama_sampler_free(self._full)
        c.llama_sampler_free(self._grammar)
        self._full = self._grammar = None

    def __del__(self) -> None:
        self.close()


class CheckedGrammar:
    """A grammar llama.cpp parsed: its text, and its sampler until someone takes it."""

    def __init__(self, text: str, sampler: Any) -> None:
        self.text = text
        self.sampler = sampler

    def take(self) -> Any:
        sampler, self.sampler = self.sampler, None
        return sampler

    def chain_grammar(self) -> Any:
        """For llama-cpp-python's chain, which parses the text again itself."""
        from llama_cpp.llama_grammar import LlamaGrammar

        return LlamaGrammar.from_string(self.text, verbose=False)

    def close(self) -> None:
        sampler = self.take()
        if sampler:
            _lib().llama_sampler_free(sampler)


class GrammarHook:
    """Has ``Llama.generate`` sample with a :class:`~ponder.engine.grammar.RejectionSampler`:
    its chain is built (without the grammar) when the generator first runs, through the
    instance's ``_init_sampler``, which this replaces until :meth:`close`."""

    def __init__(self, llama: Any, grammar: CheckedGrammar, sampling: SamplingParams) -> None:
        self._llama = llama
        self._sampler: RejectionSampler | None = None
        original = llama._init_sampler

        def init_sampler(**kwargs: Any) -> Any:
            plain = original(**kwargs)
            taken = grammar.take()
            if taken is None:  # a second generator (never, with a grammar): no check
                return plain
            self._sampler = RejectionSampler(plain, taken, sampling, llama._seed)
            return self._sampler

        llama._init_sampler = init_sampler

    def close(self) -> None:
        llama = self._llama
        with contextlib.suppress(AttributeError):
            del llama._init_sampler  # the class's own again
        if self._sampler is not None:
            llama._sampler = None
            self._sampler.close()
            self._sampler = None


def rest_of_chain(c: Any, sampling: SamplingParams, seed: int) -> list[Any]:
    """The chain after the grammar, as llama-cpp-python's ``_init_sampler`` builds it."""
    temp = sampling.temperature
    if temp < 0:
        return [c.llama_sampler_init_dist(seed)]
    if temp == 0:
        return [c.llama_sampler_init_greedy()]
    return [
        c.llama_sampler_init_top_k(sampling.top_k),
        c.llama_sampler_init_typical(1.0, 1),
        c.llama_sampler_init_top_p(sampling.top_p, 1),
        c.llama_sampler_init_min_p(sampling.min_p, 1),
        c.llama_sampler_init_temp(temp),
        c.llama_sampler_init_dist(seed),
    ]
