"""The llama.cpp engine: with the device probe, the only code that imports ``llama_cpp``.

Why a loop of our own rather than ``create_completion(stream=True)``: that call
re-detokenizes the whole completion for every token, which is O(n²) over an R1
trace of several thousand tokens (docs/architecture.md#generation-loop: 127 against 317 tok/s at
4,096 tokens). Here ``Llama.generate()`` does the decoding and the sampling (in
llama.cpp's C sampler chain) and each token's bytes are looked up once, memoised,
and fed to an incremental UTF-8 decoder, so a character split across tokens comes
out whole and the cost per token stays constant.

One ``Llama`` is kept per loaded model. ``generate()`` compares the new prompt with
the tokens already in the KV cache and evaluates only the new suffix, so a second
turn prefills only its own tokens. The cache of sequence 0 can also be copied out and
put back (``llama_state_seq_get_data``/``set_data``), so a chat continued in a new
process starts from where the last one left off (docs/architecture.md#continued-chats);
``Llama.save_state()`` is not used: it also copies the n_ctx × n_vocab logits (GBs).

llama.cpp's own log is routed into :mod:`logging` (logger ``ponder.llama``) and a
short ring buffer instead of stderr. llama-cpp-python would otherwise silence it by
redirecting file descriptors 1 and 2 during load, which is unsafe while a TUI owns
the terminal from another thread.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import io
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

from ponder.engine import batched, kv_state
from ponder.engine import grammar as _grammar
from ponder.engine.base import (
    GenerationStats,
    Injector,
    KVState,
    LoadParams,
    check_prompt_fits,
)
from ponder.errors import ModelLoadError, UsageError
from ponder.gguf_info import GGUFInfo
from ponder.sampling import SamplingParams

log = logging.getLogger("ponder.llama")


def _lib() -> Any:
    """llama_cpp, imported on first use: loading its shared library takes a moment
    that `ponder --help` and `ponder chats` should not pay."""
    import llama_cpp

    return llama_cpp


# The last lines llama.cpp logged, for error messages and memory accounting.
LLAMA_LOG: deque[str] = deque(maxlen=400)
_LOCK_FOR_LOG = threading.Lock()
GGML_LOG_INFO = 2
GGML_LOG_CONT = 5
_last_kept = [False]
_log_callback_ref: Any = None


def _install_log_callback() -> None:
    """Send llama.cpp's log to ``logging`` once per process (idempotent)."""
    global _log_callback_ref
    llama_cpp = _lib()
    with _LOCK_FOR_LOG:
        if _log_callback_ref is not None:
            return

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def _on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            line = text.decode("utf-8", errors="replace")
            log.debug(line.rstrip("\n"))
            # ggml's levels: 1 debug, 2 info, 3 warn, 4 error, 5 continues the last line.
            # A load logs ~2,000 debug lines (one per tensor); keeping them would push the
            # buffer sizes and errors out of the short ring buffer.
            keep = _last_kept[0] if level == GGML_LOG_CONT else level >= GGML_LOG_INFO
            _last_kept[0] = keep
            if keep:
                LLAMA_LOG.append(line)

        _log_callback_ref = _on_log  # keep the C callback alive
        llama_cpp.llama_log_set(_on_log, ctypes.c_void_p(0))


class LlamaEngine:
    """A loaded GGUF model, driven token by token."""

    def __init__(self, llama: Any, info: GGUFInfo, params: LoadParams, load_s: float) -> None:
        self._llama = llama
        self.info = info
        self.params = params
        self.load_s = load_s
        self._vocab = llama._model.vocab
        self._c = _lib()
        self._pieces: dict[int, bytes] = {}
        self._eog: dict[int, bool] = {}
        self._bos_text = self._piece_text(self._c.llama_vocab_bos(self._vocab))
        # llama.cpp pads the context (to a multiple of 256), but llama-cpp-python sizes
        # its token array for the context asked for: the smaller one is the real limit.
        self._n_ctx = min(int(llama.n_ctx()), len(llama.input_ids))
        self.max_sequences = batched.max_sequences(self._c, llama)

    # -- loading -----------------------------------------------------------------

    @classmethod
    def load(cls, info: GGUFInfo, params: LoadParams) -> LlamaEngine:
        """Load ``info.path`` with ``params``; a failure becomes :class:`ModelLoadError`."""
        _install_log_callback()
        started = time.monotonic()
        kwargs: dict[str, Any] = {
            "model_path": str(info.path),
            "n_ctx": params.n_ctx,
            "n_gpu_layers": params.n_gpu_layers,
            "n_threads": params.n_threads,
            "n_threads_batch": params.n_threads_batch,
            "n_batch": params.n_batch,
            "n_ubatch": min(params.n_batch, 512),
            "flash_attn": params.flash_attn,
            "use_mmap": params.use_mmap,
            "use_mlock": params.use_mlock,
            # verbose=True keeps llama-cpp-python from redirecting fds 1/2; the C log
            # goes to our callback, and its Python prints are captured below.
            "verbose": True,
        }
        LLAMA_LOG.clear()
        sink = io.StringIO()
        try:
            with (
                contextlib.redirect_stderr(sink),
                contextlib.redirect_stdout(sink),
                # Llama()'s own micro-batch: n_batch is capped by n_ctx, n_ubatch by both.
                batched.sequences_at_load(_lib(), min(params.n_ctx, params.n_batch, 512)),
            ):
                llama = _lib().Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {info.path.name}: {_load_failure_reason(exc)}",
                hint="try a smaller --ctx; if the file is damaged, download it again",
            ) from None
        llama.verbose = False
        return cls(llama, info, params, time.monotonic() - started)

    # -- tokens ------------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    @property
    def bos_text(self) -> str:
        return self._bos_text

    @property
    def add_bos(self) -> bool:
        return bool(self._c.llama_vocab_get_add_bos(self._vocab))

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        """Tokenize with special tokens recognised (a rendered template contains them).

        Not ``Llama.tokenize``: llama-cpp-python sizes its buffer by the model's trained
        context, so a GGUF claiming 2^31-1 tokens made it allocate 8 GiB (a 9 GB peak
        against a 1.3 GiB plan, issue 13). A token is at least one byte, so the text's
        length (plus the BOS) is always enough; llama.cpp says so if it is not.
        """
        raw = text.encode("utf-8")
        size = len(raw) + 2
        while True:
            buf = (self._c.llama_token * size)()
            n = self._c.llama_tokenize(self._vocab, raw, len(raw), buf, size, add_bos, True)
            if n >= 0:
                return list(buf[:n])
            if -n <= size:  # llama.cpp's int32 overflow: no count we could allocate
                raise ModelLoadError(f"llama.cpp could not tokenize {len(raw):,} bytes")
            size = -n

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            piece = _token_to_piece(self._vocab, token)
            self._pieces[token] = piece
        return piece

    def _piece_text(self, token: int) -> str:
        if token < 0:
            return ""
        return _token_to_piece(self._vocab, token, special=True).decode("utf-8", errors="replace")

    def _is_eog(self, token: int) -> bool:
        eog = self._eog.get(token)
        if eog is None:
            eog = bool(self._c.llama_vocab_is_eog(self._vocab, token))
            self._eog[token] = eog
        return eog

    # -- generation --------------------------------------------------------------

    def generate(
        self,
        prompt_tokens: Sequence[int],
        sampling: SamplingParams,
        stats: GenerationStats,
        cancel: threading.Event | None = None,
        inject: Injector | None = None,
    ) -> Iterator[str]:
        """Yield the text of each generated token ("" while a character is incomplete).

        Stops at an end-of-generation token, ``max_tokens``, a full context, or when
        ``cancel`` is set (checked after every token). ``stats`` is updated in place.
        The prompt length and the grammar are checked here, before anything runs, so
        a caller can record nothing when they are wrong.

        ``inject`` is asked after every token for text to append to the context; the
        text is yielded as it is and evaluated with the next token, and the model goes
        on from it. It does not count as completion tokens. With a grammar nothing is
        injected: the grammar's state would no longer match the text. Injecting resets
        llama.cpp's sampler history (the repeat penalty's window), nothing else.
        """
        check_prompt_fits(len(prompt_tokens), self.n_ctx)
        grammar = self._compile_grammar(sampling.grammar) if sampling.grammar else None
        if grammar is not None:
            inject = None
        return self._generate(prompt_tokens, sampling, grammar, stats, cancel, inject)

    def _generate(
        self,
        prompt_tokens: Sequence[int],
        sampling: SamplingParams,
        grammar: _grammar.CheckedGrammar | None,
        stats: GenerationStats,
        cancel: threading.Event | None,
        inject: Injector | None,
    ) -> Iterator[str]:
        n_ctx = self.n_ctx
        llama = self._llama
        if sampling.seed is not None:
            llama.set_seed(sampling.seed)
        stats.prompt_tokens = len(prompt_tokens)
        stats.cached_tokens = kv_state.common_prefix(llama._input_ids, prompt_tokens)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        budget = sampling.max_tokens if sampling.max_tokens is not None else n_ctx

        # A grammar is checked on the sampled token, as llama.cpp's tools do (see
        # ponder.engine.grammar), unless a repeat penalty keeps a history to spoil.
        rejection = _grammar.rejection_applies(sampling) if grammar is not None else False
        checker = _grammar.GrammarHook(llama, grammar, sampling) if grammar and rejection else None

        def start(context: list[int]) -> Generator[int, Any, None]:
            # A fresh generator reuses the KV cache for the longest common prefix, so
            # starting again after an injection evaluates only the new tokens.
            return llama.generate(  # type: ignore[no-any-return]
                context,
                top_k=sampling.top_k,
                top_p=sampling.top_p,
                min_p=sampling.min_p,
                temp=sampling.temperature,
                repeat_penalty=sampling.repeat_penalty,
                grammar=None if grammar is None or rejection else grammar.chain_grammar(),
            )

        context = list(prompt_tokens)
        tokens = start(context)
        started = time.monotonic()
        first_at: float | None = None
        try:
            while True:
                try:
                    token = next(tokens)
                except StopIteration:
                    break
                if first_at is None:
                    first_at = time.monotonic()
                    stats.prompt_eval_s = first_at - started
                if self._is_eog(token) and not sampling.ignore_eos:
                    stats.finish_reason = "stop"
                    break
                stats.completion_tokens += 1
                context.append(token)
                yield decoder.decode(self._piece(token))
                if cancel is not None and cancel.is_set():
                    stats.finish_reason = "interrupted"
                    break
                if stats.completion_tokens >= budget or llama.n_tokens + 1 >= n_ctx:
                    stats.finish_reason = "length"
                    break
                text = inject() if inject is not None else None
                if text:
                    ids = self.tokenize(text, add_bos=False)
                    if len(context) + len(ids) + 1 >= n_ctx:
                        stats.finish_reason = "length"
                        break
                    # llama-cpp-python's send() would sample from a position whose logits
                    # were never computed; a new generator over the longer context does not.
                    tokens.close()
                    context.extend(ids)
                    yield decoder.decode(b"", final=True) + text
                    decoder.reset()
                    tokens = start(context)
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
        finally:
            tokens.close()
            now = time.monotonic()
            stats.decode_s = now - (first_at if first_at is not None else now)
            if checker is not None:
                checker.close()
            if grammar is not None:
                grammar.close()

    def generate_many(
        self,
        prompt_tokens: Sequence[int],
        samplings: Sequence[SamplingParams],
        stats: Sequence[GenerationStats],
        cancel: threading.Event | None = None,
        inject: Callable[[int], str | None] | None = None,
    ) -> Iterator[tuple[int, str | None]]:
        """Candidates of one prompt decoded together: see :mod:`ponder.engine.batched`."""
        model = batched.Model(
            self._c,
            self._llama,
            self.n_ctx,
            self.max_sequences,
            self._piece,
            self._is_eog,
            lambda text: self.tokenize(text, add_bos=False),
            self._compile_grammar,
        )
        return batched.generate_many(model, prompt_tokens, samplings, stats, cancel, inject)

    def _compile_grammar(self, text: str) -> _grammar.CheckedGrammar:
        """Parse GBNF with llama.cpp's own parser before it reaches the sampler chain.

        ``LlamaGrammar.from_string`` does not parse; a bad grammar would only fail
        when the chain is built, as a NULL sampler that crashes the process. The
        parsed grammar is the one sampled with (:mod:`ponder.engine.grammar`).
        """
        LLAMA_LOG.clear()
        probe = self._c.llama_sampler_init_grammar(self._vocab, text.encode("utf-8"), b"root")
        if not probe:
            detail = _last_error_line() or "llama.cpp rejected it"
            raise UsageError(
                f"the grammar could not be parsed: {detail}",
                hint="see llama.cpp's grammars/README.md for GBNF syntax",
            )
        return _grammar.CheckedGrammar(text, probe)

    # -- the KV cache, saved and restored (ponder.engine.kv_state) -------------------

    def state_identity(self) -> dict[str, object]:
        return kv_state.identity(self._c, self.params, self._n_ctx)

    def cached_tokens(self) -> list[int]:
        return kv_state.tokens_held(self._llama)

    def keep_prefix(self, n_tokens: int) -> bool:
        return kv_state.keep_prefix(self._c, self._llama, n_tokens)

    def save_state(self) -> KVState | None:
        return kv_state.save(self._c, self._llama)

    def load_state(self, state: KVState, keep: int) -> bool:
        return kv_state.load(self._c, self._llama, state, keep, self._n_ctx)

    def close(self) -> None:
        self._llama.close()


def _token_to_piece(vocab: Any, token: int, *, special: bool = False) -> bytes:
    """The bytes of one token, growing the buffer when a piece is long."""
    to_piece = _lib().llama_token_to_piece
    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = to_piece(vocab, token, buf, size, 0, special)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def _last_error_line() -> str | None:
    """The most telling line llama.cpp logged lately, if any."""
    for line in reversed(LLAMA_LOG):
        lowered = line.lower()
        if any(word in lowered for word in ("error", "failed", "cannot", "out of memory")):
            return line.strip()
    return None


def _load_failure_reason(exc: Exception) -> str:
    return _last_error_line() or str(exc)
