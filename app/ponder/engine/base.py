"""The engine seam: what the session needs from an engine, whatever runs the model.

:class:`Engine` is a protocol. The llama.cpp engine (:mod:`ponder.engine.llama`)
satisfies it, and so does the scripted engine of the tests; a remote engine over an
OpenAI-compatible server will too. The session holds one engine per loaded model and
never asks which kind it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ponder.errors import ContextOverflowError
from ponder.events import FinishReason
from ponder.gguf_info import GGUFInfo
from ponder.sampling import SamplingParams


@dataclass(frozen=True, slots=True)
class LoadParams:
    """How to load a model: always set from a plan, never llama-cpp-python's defaults."""

    n_ctx: int
    n_gpu_layers: int = 0
    n_threads: int | None = None
    n_threads_batch: int | None = None
    n_batch: int = 512
    flash_attn: bool = True
    use_mmap: bool = True
    use_mlock: bool = False


@dataclass(slots=True)
class GenerationStats:
    """Filled in while a generation runs; final once its iterator is exhausted."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason = "stop"
    prompt_eval_s: float = 0.0
    decode_s: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


class Engine(Protocol):
    """What the session needs from an engine; a remote engine will satisfy it too."""

    @property
    def n_ctx(self) -> int: ...

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]: ...

    def generate(
        self,
        prompt_tokens: Sequence[int],
        sampling: SamplingParams,
        stats: GenerationStats,
        cancel: threading.Event | None = None,
        inject: Injector | None = None,
    ) -> Iterator[str]: ...

    @property
    def bos_text(self) -> str: ...

    @property
    def add_bos(self) -> bool: ...

    @property
    def load_s(self) -> float: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class KVState:
    """A sequence's KV cache as llama.cpp serialises it, and the exact tokens it holds."""

    tokens: tuple[int, ...]
    data: bytearray | memoryview  # writable: llama.cpp reads it through a ctypes view

    @property
    def nbytes(self) -> int:
        return memoryview(self.data).nbytes


@runtime_checkable
class KeepsState(Protocol):
    """An engine whose KV cache can be saved and restored (the llama.cpp engine).

    Optional: an engine without these methods (a scripted one, a server) simply
    re-reads a continued chat. The session checks with ``isinstance``.
    """

    def state_identity(self) -> dict[str, object]:
        """What a saved state must have been made under to be used here: the engine's
        build and the load parameters that shape the cache."""
        ...

    def cached_tokens(self) -> list[int]:
        """The tokens whose KV entries the context holds now, in order."""
        ...

    def keep_prefix(self, n_tokens: int) -> bool:
        """Drop the cache after the first ``n_tokens`` tokens; False, with nothing
        dropped, when what would remain could not be gone on from."""
        ...

    def save_state(self) -> KVState | None:
        """A copy of the cache and its tokens (None when there is nothing to save)."""
        ...

    def load_state(self, state: KVState, keep: int) -> bool:
        """Put ``state`` into the context, keeping its first ``keep`` tokens. False (and
        an empty cache) when llama.cpp refuses it."""
        ...


@runtime_checkable
class Batches(Protocol):
    """An engine that decodes several sequences of one prompt at once (the llama.cpp engine).

    Optional, like :class:`KeepsState`; the session checks with ``isinstance``.
    """

    max_sequences: int  # 16 for llama.cpp

    def generate_many(
        self,
        prompt_tokens: Sequence[int],
        samplings: Sequence[SamplingParams],
        stats: Sequence[GenerationStats],
        cancel: threading.Event | None = None,
        inject: Callable[[int], str | None] | None = None,
    ) -> Iterator[tuple[int, str | None]]:
        """Sample ``prompt_tokens`` once per sampling (each its own seed, max_tokens,
        grammar, ignore_eos), all in one context, the prompt evaluated once.

        Yields ``(i, text)`` for each token of candidate ``i``, text as ``generate()``
        yields it (injected text as is, right after the token it followed), and
        ``(i, None)`` exactly once when candidate ``i`` has ended, ``stats[i]`` then
        final ("stop", "length" at its max_tokens or a full context, "interrupted" when
        ``cancel`` is set). ``inject(i)`` is asked after each token of candidate ``i``
        for text to append to that candidate alone (never with a grammar). Raises
        before anything runs: ValueError for a wrong count, ContextOverflowError,
        UsageError for a grammar. Afterwards (ended, cancelled, closed, failed) the
        context holds exactly the prompt, as after a ``generate()`` of no tokens.
        """
        ...


# Asked after every token: text to put into the context now, as if the model had
# written it (the TUI's "wrap up" closes the thinking with "</think>"), or None.
Injector = Callable[[], str | None]


def check_prompt_fits(n_prompt: int, n_ctx: int) -> None:
    """Refuse a prompt that leaves no room in the context for even one token."""
    if n_prompt >= n_ctx:
        raise ContextOverflowError(
            f"the prompt is {n_prompt:,} tokens but the context holds {n_ctx:,}",
            hint="shorten the prompt, start a new chat, or raise --ctx",
        )


# How the session loads a model: the GGUF's facts and the planned parameters in, an engine out.
EngineLoader = Callable[[GGUFInfo, "LoadParams"], Engine]
