"""A scripted engine for TUI tests and the TUI benchmark: no GPU, no weights, no waiting.

It satisfies :class:`ponder.engine.Engine` as the llama.cpp engine does (context
check, ``max_tokens``, cancel after a token, injected text), and plays back an R1
reply written in the shape the 1.5B distill produces: a long trace that starts
inside thinking (the template prefilled ``<think>\\n``), one ``</think>``, then a
Markdown answer with a code block. Tests can pace it (tokens per second) and hold
it at a token until released, so a flow such as "stop while thinking" is
deterministic; they can hold a load the same way, and the script records how many
loads and replies ran at once, so a test can show that two never overlap.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from ponder.engine import (
    GenerationStats,
    Injector,
    LoadParams,
    SamplingParams,
    check_prompt_fits,
)
from ponder.gguf_info import GGUFInfo

R1_REASONING = """Okay, so I need to figure out what 17 times 23 is. Hmm, let me think about \
how to do this without a calculator.

I remember that multiplying two-digit numbers can be broken down. Maybe I can split 23 into 20 \
and 3. So 17 times 20 is 340, and 17 times 3 is 51. Adding those together, 340 plus 51 equals 391.

Wait, let me double-check that another way. 23 times 17: 23 times 10 is 230, and 23 times 7 is \
161. 230 plus 161 is 391. Okay, both ways give me 391, so that seems right.

Alternatively, I could use the difference of squares: 17 times 23 is (20 - 3)(20 + 3), which is \
400 minus 9, so 391. Yep, that confirms it.
"""

R1_ANSWER = """**17 × 23 = 391**

Splitting 23 into 20 + 3:

| step | value |
|------|------:|
| 17 × 20 | 340 |
| 17 × 3 | 51 |
| sum | **391** |

Or in Python:

```python
print(17 * 23)  # 391
```
"""

HOLD_LIMIT_S = 60.0

_PIECE = re.compile(r"\s*\S{1,4}|\s+")


def pieces(text: str) -> list[str]:
    """Token-sized pieces of ``text`` (whitespace rides with the next piece, as in BPE)."""
    return _PIECE.findall(text)


@dataclass
class Script:
    """What the engine says: reasoning (already inside <think>), then the answer."""

    reasoning: str = R1_REASONING
    answer: str = R1_ANSWER
    tokens_per_s: float | None = None  # None: as fast as the consumer reads
    hold_at: int | None = None  # wait before this token until release() (or cancel)
    loops: int = 1  # play the reasoning this many times (benchmarks want long streams)
    fail_load: str | None = None  # a ModelLoadError message to raise on load
    released: threading.Event = field(default_factory=threading.Event)
    reached_hold: threading.Event = field(default_factory=threading.Event)
    prompts: list[int] = field(default_factory=list)  # prompt lengths seen, per reply
    hold_load: bool = False  # a load waits until release_load() (at most HOLD_LIMIT_S)
    load_released: threading.Event = field(default_factory=threading.Event)
    reached_load_hold: threading.Event = field(default_factory=threading.Event)
    loads: int = 0  # loads begun
    most_at_once: int = 0  # the most loads and replies that ran at the same time
    overlaps: list[str] = field(default_factory=list)  # "load while reply", ...
    _running: list[str] = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def release(self) -> None:
        self.released.set()

    def release_load(self) -> None:
        self.load_released.set()

    @contextmanager
    def running(self, what: str) -> Iterator[None]:
        """Count ``what`` ("load" or "reply") as running while the block runs."""
        with self._lock:
            if self._running:
                self.overlaps.append(f"{what} while {', '.join(self._running)}")
            self._running.append(what)
            self.most_at_once = max(self.most_at_once, len(self._running))
        try:
            yield
        finally:
            with self._lock:
                self._running.remove(what)

    def stream(self) -> tuple[list[str], int]:
        """The pieces, and the index of the first answer piece (after the closing tag)."""
        think = pieces(self.reasoning) * self.loops + ["\n</think>\n\n"]
        return think + pieces(self.answer), len(think)


class ScriptedEngine:
    """An engine that plays a :class:`Script` back; one per load, like the real one."""

    def __init__(self, info: GGUFInfo, params: LoadParams, script: Script) -> None:
        self.info = info
        self.params = params
        self.script = script
        self.load_s = 0.0
        self.closed = False

    @property
    def n_ctx(self) -> int:
        return self.params.n_ctx

    @property
    def bos_text(self) -> str:
        return ""

    @property
    def add_bos(self) -> bool:
        return False

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        return [len(p) for p in pieces(text)]

    def generate(
        self,
        prompt_tokens: Sequence[int],
        sampling: SamplingParams,
        stats: GenerationStats,
        cancel: threading.Event | None = None,
        inject: Injector | None = None,
    ) -> Iterator[str]:
        check_prompt_fits(len(prompt_tokens), self.n_ctx)  # as the real engine does
        self.script.prompts.append(len(prompt_tokens))
        return self._play(prompt_tokens, sampling, stats, cancel, inject)

    def _play(
        self,
        prompt_tokens: Sequence[int],
        sampling: SamplingParams,
        stats: GenerationStats,
        cancel: threading.Event | None,
        inject: Injector | None,
    ) -> Iterator[str]:
        with self.script.running("reply"):
            yield from self._tokens(prompt_tokens, sampling, stats, cancel, inject)

    def _tokens(
        self,
        prompt_tokens: Sequence[int],
        sampling: SamplingParams,
        stats: GenerationStats,
        cancel: threading.Event | None,
        inject: Injector | None,
    ) -> Iterator[str]:
        script = self.script
        stream, answer_at = script.stream()
        stats.prompt_tokens = len(prompt_tokens)
        budget = sampling.max_tokens or self.n_ctx
        started = time.monotonic()
        first: float | None = None
        stats.finish_reason = "stop"
        i = 0
        while i < len(stream):
            if script.hold_at is not None and i == script.hold_at:
                script.reached_hold.set()
                while not script.released.wait(0.01):
                    if cancel is not None and cancel.is_set():
                        break
            if script.tokens_per_s:
                delay = started + i / script.tokens_per_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if first is None:
                first = time.monotonic()
                stats.prompt_eval_s = first - started
            stats.completion_tokens += 1
            yield stream[i]
            i += 1
            if cancel is not None and cancel.is_set():
                stats.finish_reason = "interrupted"
                break
            if stats.completion_tokens >= budget:
                stats.finish_reason = "length"
                break
            extra = inject() if inject is not None else None
            if extra:
                yield extra
                i = max(i, answer_at)  # the model, told it is done thinking, answers
        stats.decode_s = time.monotonic() - (first or time.monotonic())

    def close(self) -> None:
        self.closed = True


def loader(script: Script):  # type: ignore[no-untyped-def]
    """An ``EngineLoader`` for :class:`ponder.session.Session` that plays ``script``."""
    from ponder.errors import ModelLoadError

    def load(info: GGUFInfo, params: LoadParams) -> ScriptedEngine:
        with script.running("load"):
            script.loads += 1
            if script.hold_load:
                script.reached_load_hold.set()
                script.load_released.wait(HOLD_LIMIT_S)  # a failed test must not hang
            if script.fail_load:
                raise ModelLoadError(script.fail_load, hint="try a smaller --ctx")
            return ScriptedEngine(info, params, script)

    return load
