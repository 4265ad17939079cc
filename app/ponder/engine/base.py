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
from typing import Protocol

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
