"""Copying a llama.cpp context's KV cache out and putting it back, for one sequence.

A chat continued in a new process would otherwise evaluate its whole history again:
about 30 s for 3,000 tokens of a 1.5B distill on two cores. The session keeps the
cache of a chat's latest prefix on disk (:mod:`ponder.session.kv_cache`); this module
is the part that touches llama.cpp: ``llama_state_seq_get_data``/``set_data`` on
sequence 0, and ``llama_memory_seq_rm`` to keep only the prefix a new prompt shares.

``Llama.save_state()``/``load_state()`` are not used: they also copy llama-cpp-python's
logits array (``n_ctx × n_vocab`` floats, gigabytes for Gemma's 262k vocabulary) and the
whole context's state, where only sequence 0's cells are wanted. The functions take the
``llama_cpp`` module and the ``Llama`` object from :class:`~ponder.engine.LlamaEngine`,
which stays the only holder of both (docs/architecture.md#continued-chats).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from ponder.engine.base import KVState, LoadParams


def identity(c: Any, params: LoadParams, n_ctx: int) -> dict[str, object]:
    """The build of llama.cpp and the load parameters that shape the KV cache.

    Threads, mmap and mlock are left out: they change where and how fast the numbers
    are computed, not the numbers (each output of ggml's CPU kernels is computed whole
    by one thread, whatever the thread count).
    """
    return {
        "engine": f"llama-cpp-python {getattr(c, '__version__', '?')}",
        "system": c.llama_print_system_info().decode("utf-8", errors="replace").strip(),
        "n_ctx": n_ctx,
        "n_gpu_layers": params.n_gpu_layers,
        "n_batch": params.n_batch,
        "flash_attn": params.flash_attn,
    }


def tokens_held(llama: Any) -> list[int]:
    """The tokens whose KV entries the context holds, in order."""
    return [int(t) for t in llama.input_ids[: llama.n_tokens]]


def common_prefix(held: Sequence[int], prompt: Sequence[int]) -> int:
    """How many tokens ``prompt`` shares with the start of ``held``."""
    n = 0
    for a, b in zip(held, prompt, strict=False):
        if a != b:
            break
        n += 1
    return n


def keep_prefix(c: Any, llama: Any, n_tokens: int) -> bool:
    """Drop the cache after its first ``n_tokens`` tokens (0: all of it). False, with
    nothing dropped, when what would remain could not be gone on from
    (:func:`_covers`)."""
    n_tokens = max(min(n_tokens, llama.n_tokens), 0)
    if n_tokens == 0:
        c.llama_memory_seq_rm(_memory(c, llama), -1, -1, -1)
        llama.n_tokens = 0
        llama._requires_eval = True
        return True
    if not _covers(c, llama, n_tokens):
        return False
    if n_tokens == llama.n_tokens:
        return True
    if not c.llama_memory_seq_rm(_memory(c, llama), 0, n_tokens, -1):
        return False
    llama.n_tokens = n_tokens
    llama._requires_eval = True  # the logits at hand are not the last kept token's
    return True


def save(c: Any, llama: Any) -> KVState | None:
    """A copy of sequence 0's cache and its tokens; None when it holds nothing."""
    if llama.n_tokens <= 0:
        return None
    ctx = llama._ctx.ctx
    size = int(c.llama_state_seq_get_size(ctx, 0))
    buf = (ctypes.c_uint8 * size)()
    written = int(c.llama_state_seq_get_data(ctx, buf, size, 0))
    if written <= 0 or written > size:
        return None
    return KVState(tuple(tokens_held(llama)), memoryview(buf).cast("B")[:written])


def load(c: Any, llama: Any, state: KVState, keep: int, n_ctx: int) -> bool:
    """Put ``state`` into sequence 0 and keep its first ``keep`` tokens.

    The cache must then end at position len(tokens)-1 and hold what the kept prefix
    needs (:func:`_covers`), or it is dropped: never a cache that would answer from
    other tokens than the state claims. False, with an empty cache, whenever it is not
    used.
    """
    mem = _memory(c, llama)
    c.llama_memory_seq_rm(mem, -1, -1, -1)
    llama.n_tokens = 0
    llama._requires_eval = True
    size = state.nbytes
    n = len(state.tokens)
    keep = min(max(keep, 0), n)
    ok = keep > 0 and n <= n_ctx and size > 0
    if ok:
        view = (ctypes.c_uint8 * size).from_buffer(state.data)
        ok = (
            int(c.llama_state_seq_set_data(llama._ctx.ctx, view, size, 0)) == size
            and int(c.llama_memory_seq_pos_max(mem, 0)) == n - 1
            and _covers(c, llama, keep)
        )
    if ok and keep < n:
        ok = bool(c.llama_memory_seq_rm(mem, 0, keep, -1))
    if not ok:
        c.llama_memory_seq_rm(mem, -1, -1, -1)
        return False
    llama.input_ids[:keep] = state.tokens[:keep]
    llama.n_tokens = keep
    return True


def _covers(c: Any, llama: Any, n_tokens: int) -> bool:
    """Whether the cache holds every cell the next token after the first ``n_tokens``
    attends to.

    A sliding-window model (Gemma 3: a 512-token window in five layers of six) may not
    hold every cell in those layers: a saved state carries only the cells its last
    position attends to, so once restored it cannot be cut far behind its end without
    the next token attending to fewer tokens than it should. llama.cpp's server refuses
    such a reuse with the same test: the oldest cell held must be no later than the cut
    minus the window.
    """
    pos_min = int(c.llama_memory_seq_pos_min(_memory(c, llama), 0))
    n_swa = max(int(c.llama_model_n_swa(llama.model)), 0)
    return 0 <= pos_min <= max(0, n_tokens - n_swa)


def _memory(c: Any, llama: Any) -> Any:
    return c.llama_get_memory(llama._ctx.ctx)
