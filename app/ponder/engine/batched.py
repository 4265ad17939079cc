"""N candidates of one prompt decoded together in one llama.cpp context (issue 11, votes).

The prompt is evaluated once, on sequence 0, reusing what seq 0 already holds as
``generate()`` does. Seq 0 is then copied to seqs 1..N (``llama_memory_seq_cp``: in a
unified KV cache that tags the prompt's cells with the new sequence ids, it copies no
data), and candidate ``i`` runs on seq ``i + 1``. Every step puts one token per live
candidate (and a candidate's injected tokens) into ONE ``llama_decode`` batch, each at
its own position with logits on its last token, and samples each candidate with its own
chain, built as ``Llama._init_sampler`` builds it for the same :class:`SamplingParams`,
so a candidate behaves like a ``generate()`` with its seed.

Seq 0 is kept for the prompt alone, and written only while the prompt is evaluated: a
sliding-window model (Gemma 3) lets llama.cpp overwrite a cell that is outside the
window of the one sequence holding it, so a candidate on seq 0 would, after 512
tokens, have let its own writes replace the prompt's last window, and the next turn
could not have reused it. The context therefore needs ``N_SEQ_MAX = 17`` sequences
for 16 candidates. An ended candidate's cells are dropped at once, so the live ones
get the room; at the end (normal, cancelled, closed or failed) seqs 1..N are removed
and seq 0 holds exactly the prompt, with llama-cpp-python's ``n_tokens``/``input_ids``
saying so.

Why by hand: llama-cpp-python has no batched generation, and ``Llama()`` does not take
``n_seq_max``. :func:`sequences_at_load` gives the context its sequences: ``Llama()``
reads its context parameters from ``llama_cpp.llama_context_default_params()`` once,
and sets fields of its own on them but never ``n_seq_max`` or ``kv_unified``, so that
call is wrapped while ``Llama()`` runs. The alternative, a second ``LlamaContext``
built from ``llama._model`` after the load, would allocate and reserve the KV cache
twice and leave llama-cpp-python holding a context it did not make. ``kv_unified`` is
needed: without it llama.cpp splits ``n_ctx`` between the sequences, and seq 0 alone
would have 1/17 of it. :func:`max_sequences` reads back what the context got, so a
llama-cpp-python that stops reading the defaults that way gives 0 (votes refused), not
a wrong context.
"""

from __future__ import annotations

import codecs
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ponder.engine import grammar as _grammar
from ponder.engine import kv_state
from ponder.engine.base import GenerationStats, check_prompt_fits
from ponder.events import FinishReason
from ponder.sampling import SamplingParams

MAX_SEQUENCES = 16
N_SEQ_MAX = MAX_SEQUENCES + 1  # seq 0 holds the prompt, candidates run on 1..16
# llama-cpp-python's Llama(last_n_tokens_size=64): the repeat penalty's window.
PENALTY_LAST_N = 64
_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def sequences_at_load(c: Any, n_ubatch: int) -> Iterator[None]:
    """While this runs, ``Llama()`` builds a context of ``N_SEQ_MAX`` sequences sharing
    one unified KV cache (see the module docstring for why this way). Never more than
    ``n_ubatch``: llama.cpp reserves one output per sequence in a micro-batch, and
    aborts the process (an assert) when they do not fit."""
    module = c.llama_cpp  # the module llama.py calls it through
    original = module.llama_context_default_params

    def with_sequences() -> Any:
        params = original()
        params.n_seq_max = max(1, min(N_SEQ_MAX, n_ubatch))
        params.kv_unified = True
        return params

    with _PATCH_LOCK:
        module.llama_context_default_params = with_sequences
        try:
            yield
        finally:
            module.llama_context_default_params = original


def max_sequences(c: Any, llama: Any) -> int:
    """How many candidates the loaded context can hold (seq 0 is the prompt's)."""
    return max(0, min(MAX_SEQUENCES, int(c.llama_n_seq_max(llama._ctx.ctx)) - 1))


class _Chain:
    """One sampler chain as ``Llama._init_sampler`` builds it: the penalties, the
    grammar when it goes in the chain, then top-k … dist (or greedy)."""

    def __init__(self, c: Any, n_vocab: int, sampling: SamplingParams, seed: int, grammar: Any):
        self._c = c
        self.chain = c.llama_sampler_chain_init(c.llama_sampler_chain_default_params())
        add = c.llama_sampler_chain_add
        add(
            self.chain,
            c.llama_sampler_init_penalties(
                n_vocab, PENALTY_LAST_N, sampling.repeat_penalty, 0.0, 0.0
            ),
        )
        if grammar is not None:
            add(self.chain, grammar)  # the chain owns it now
        for sampler in _grammar.rest_of_chain(c, sampling, seed):
            add(self.chain, sampler)

    def sample(self, ctx: Any, idx: int) -> int:
        return int(self._c.llama_sampler_sample(self.chain, ctx.ctx, idx))

    def reset(self) -> None:
        self._c.llama_sampler_reset(self.chain)

    def close(self) -> None:
        if self.chain is not None:
            self._c.llama_sampler_free(self.chain)
            self.chain = None


@dataclass(slots=True)
class _Candidate:
    index: int
    seq: int
    sampling: SamplingParams
    stats: GenerationStats
    chain: _Chain
    rejection: _grammar.RejectionSampler | None
    injects: bool
    budget: int
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    held: int = 0  # tokens of its own in the cache (positions prompt .. prompt+held-1)
    pending: list[int] = field(default_factory=list)  # to decode in the next step
    live: bool = True

    def sample(self, ctx: Any, idx: int) -> int:
        sampler = self.rejection if self.rejection is not None else self.chain
        return sampler.sample(ctx, idx)

    def close(self) -> None:
        if self.rejection is not None:
            self.rejection.close()
        self.chain.close()


@dataclass(frozen=True, slots=True)
class Model:
    """What the loop needs from :class:`~ponder.engine.LlamaEngine`."""

    c: Any  # the llama_cpp module
    llama: Any  # the Llama
    n_ctx: int
    max_sequences: int
    piece: Callable[[int], bytes]
    is_eog: Callable[[int], bool]
    tokenize: Callable[[str], list[int]]  # without a BOS
    compile_grammar: Callable[[str], _grammar.CheckedGrammar]  # UsageError when bad


def generate_many(
    model: Model,
    prompt: Sequence[int],
    samplings: Sequence[SamplingParams],
    stats: Sequence[GenerationStats],
    cancel: threading.Event | None = None,
    inject: Callable[[int], str | None] | None = None,
) -> Iterator[tuple[int, str | None]]:
    """``LlamaEngine.generate_many`` (the :class:`~ponder.engine.base.Batches` protocol).

    Checked here, before anything runs, so the caller can record nothing when wrong:
    1 to ``max_sequences`` samplings and one stats each (ValueError), the prompt fits,
    every grammar parses (each distinct text once; every candidate gets its own copy of
    the parsed grammar's state).
    """
    if not 1 <= len(samplings) <= model.max_sequences:
        raise ValueError(f"{len(samplings)} candidates: 1 to {model.max_sequences} fit")
    if len(stats) != len(samplings):
        raise ValueError(f"{len(stats)} stats for {len(samplings)} candidates")
    check_prompt_fits(len(prompt), model.n_ctx)
    grammars: dict[str, _grammar.CheckedGrammar] = {}
    try:
        for text in dict.fromkeys(s.grammar for s in samplings if s.grammar):
            grammars[text] = model.compile_grammar(text)
    except BaseException:
        for checked in grammars.values():
            checked.close()
        raise
    return _run(model, prompt, samplings, grammars, stats, cancel, inject)


def _run(
    model: Model,
    prompt: Sequence[int],
    samplings: Sequence[SamplingParams],
    grammars: dict[str, _grammar.CheckedGrammar],
    stats: Sequence[GenerationStats],
    cancel: threading.Event | None,
    inject: Callable[[int], str | None] | None,
) -> Iterator[tuple[int, str | None]]:
    """The loop; it owns ``grammars`` and frees them."""
    c, llama = model.c, model.llama
    ctx = llama._ctx
    mem = c.llama_get_memory(ctx.ctx)
    n_prompt = len(prompt)
    cands: list[_Candidate] = []
    batch = c.llama_batch_init(llama.n_batch, 0, 1)
    first_at: float | None = None
    try:
        for i, sampling in enumerate(samplings):
            cands.append(_candidate(model, i, sampling, grammars, stats[i], inject))
        started = time.monotonic()
        cached = _prefill(c, llama, prompt, len(cands))
        first_at = time.monotonic()
        for cand in cands:
            cand.stats.prompt_tokens = n_prompt
            cand.stats.cached_tokens = cached
            cand.stats.prompt_eval_s = first_at - started
        loop = _Loop(model, mem, first_at, n_prompt, inject)
        for cand in cands:
            yield from loop.take(cand, -1)  # every first token from the prompt's logits
        while True:
            live = [cand for cand in cands if cand.live]
            if not live:
                break
            if cancel is not None and cancel.is_set():
                for cand in live:
                    yield from loop.end(cand, "interrupted")
                break
            entries = [(cand, t) for cand in live for t in cand.pending]
            if loop.held + len(entries) >= model.n_ctx:
                for cand in live:
                    yield from loop.end(cand, "length")
                break
            yield from loop.step(batch, entries)
    finally:
        now = time.monotonic()
        for cand in cands:
            if cand.live:  # closed early, or an exception: it ends here unfinished
                cand.live = False
                cand.stats.finish_reason = "interrupted"
                cand.stats.decode_s = now - first_at if first_at is not None else 0.0
            cand.close()
        for seq in range(1, len(cands) + 1):
            c.llama_memory_seq_rm(mem, seq, -1, -1)
        if first_at is not None:
            # Seq 0 holds exactly the prompt; the logits at hand are some candidate's.
            llama.n_tokens = n_prompt
            llama._requires_eval = True
        c.llama_batch_free(batch)
        for checked in grammars.values():
            checked.close()


def _candidate(
    model: Model,
    i: int,
    sampling: SamplingParams,
    grammars: dict[str, _grammar.CheckedGrammar],
    stats: GenerationStats,
    inject: Callable[[int], str | None] | None,
) -> _Candidate:
    c = model.c
    seed = sampling.seed if sampling.seed is not None else c.LLAMA_DEFAULT_SEED
    n_vocab = int(model.llama.n_vocab())
    grammar = None
    if sampling.grammar:
        grammar = c.llama_sampler_clone(grammars[sampling.grammar].sampler)
    rejection = None
    if grammar is not None and _grammar.rejection_applies(sampling):
        # As generate() does: the plain chain, the grammar checked on its token.
        chain = _Chain(c, n_vocab, sampling, seed, None)
        rejection = _grammar.RejectionSampler(chain, grammar, sampling, seed)
    else:
        chain = _Chain(c, n_vocab, sampling, seed, grammar)
    stats.completion_tokens = 0
    budget = sampling.max_tokens if sampling.max_tokens is not None else model.n_ctx
    return _Candidate(
        index=i,
        seq=i + 1,
        sampling=sampling,
        stats=stats,
        chain=chain,
        rejection=rejection,
        injects=inject is not None and grammar is None,  # a grammar's state would not match
        budget=budget,
    )


def _prefill(c: Any, llama: Any, prompt: Sequence[int], n_candidates: int) -> int:
    """Evaluate ``prompt`` on seq 0, reusing the prefix it already holds, and share it
    with seqs 1..n_candidates; the prefix reused (``generate()``'s ``cached_tokens``).

    At least the last prompt token is evaluated again, as ``Llama.generate`` does,
    since its logits are what the first tokens are sampled from.
    """
    mem = c.llama_get_memory(llama._ctx.ctx)
    for seq in range(1, N_SEQ_MAX):
        c.llama_memory_seq_rm(mem, seq, -1, -1)
    cached = kv_state.common_prefix(kv_state.tokens_held(llama), prompt)
    keep = min(cached, len(prompt) - 1)
    if not kv_state.keep_prefix(c, llama, keep):
        kv_state.keep_prefix(c, llama, 0)
        keep = 0
    llama._requires_eval = True
    llama.eval(prompt[keep:])
    for seq in range(1, n_candidates + 1):
        c.llama_memory_seq_cp(mem, 0, seq, -1, -1)
    return cached


class _Loop:
    """Sampling, yielding and decoding for the candidates of one generate_many."""

    def __init__(
        self,
        model: Model,
        mem: Any,
        first_at: float,
        n_prompt: int,
        ask: Callable[[int], str | None] | None,
    ) -> None:
        self.m = model
        self.mem = mem
        self.ask = ask
        self.first_at = first_at
        self.n_prompt = n_prompt
        self.held = n_prompt  # cells in use: the prompt once, plus each live candidate's

    def take(self, cand: _Candidate, idx: int) -> Iterator[tuple[int, str | None]]:
        """Sample ``cand``'s next token from the logits at batch index ``idx``."""
        m = self.m
        token = cand.sample(m.llama._ctx, idx)
        if m.is_eog(token) and not cand.sampling.ignore_eos:
            yield from self.end(cand, "stop")
            return
        cand.stats.completion_tokens += 1
        yield cand.index, cand.decoder.decode(m.piece(token))
        if cand.stats.completion_tokens >= cand.budget:
            yield from self.end(cand, "length")
            return
        cand.pending = [token]
        yield from self._inject(cand)

    def _inject(self, cand: _Candidate) -> Iterator[tuple[int, str | None]]:
        if not cand.injects or self.ask is None:
            return
        text = self.ask(cand.index)
        if not text:
            return
        cand.pending.extend(self.m.tokenize(text))
        yield cand.index, cand.decoder.decode(b"", final=True) + text
        cand.decoder.reset()
        # generate() starts a new sampler chain after an injection; so does this.
        cand.chain.reset()

    def step(
        self, batch: Any, entries: list[tuple[_Candidate, int]]
    ) -> Iterator[tuple[int, str | None]]:
        """Decode ``entries`` (in batches of ``n_batch``), then sample each candidate
        whose last pending token was among them."""
        c, llama = self.m.c, self.m.llama
        n_batch = int(llama.n_batch)
        positions: dict[int, int] = {}
        for start in range(0, len(entries), n_batch):
            chunk = entries[start : start + n_batch]
            last: list[tuple[_Candidate, int]] = []
            for j, (cand, token) in enumerate(chunk):
                k = positions.get(cand.seq, 0)
                positions[cand.seq] = k + 1
                is_last = k + 1 == len(cand.pending)
                batch.token[j] = token
                batch.pos[j] = self.n_prompt + cand.held + k
                batch.n_seq_id[j] = 1
                batch.seq_id[j][0] = cand.seq
                batch.logits[j] = is_last
                if is_last:
                    last.append((cand, j))
            batch.n_tokens = len(chunk)
            rc = int(c.llama_decode(llama._ctx.ctx, batch))
            if rc != 0:
                if rc != 1:  # 1: no KV slot for the batch; anything else is a real error
                    raise RuntimeError(f"llama_decode returned {rc}")
                for cand in {id(e[0]): e[0] for e in entries if e[0].live}.values():
                    yield from self.end(cand, "length")
                return
            self.held += len(chunk)
            for cand, j in last:
                cand.held += len(cand.pending)
                yield from self.take(cand, j)

    def end(self, cand: _Candidate, reason: FinishReason) -> Iterator[tuple[int, str | None]]:
        cand.live = False
        cand.pending = []
        cand.stats.finish_reason = reason
        cand.stats.decode_s = time.monotonic() - self.first_at
        self.m.c.llama_memory_seq_rm(self.mem, cand.seq, -1, -1)
        self.held -= cand.held
        tail = cand.decoder.decode(b"", final=True)
        if tail:
            yield cand.index, tail
        yield cand.index, None
