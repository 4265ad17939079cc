"""The four ways bench_generate.py decodes: Ponder's reply path and three baselines.

Each is a :class:`Variant`: a stream that yields how many tokens it has produced after
every step, so the benchmark can advance several in lockstep and time each one's own
steps (bench_generate.py's docstring says how). Kept apart from the driving and the
report so each file has one job:

* :class:`PlainLoop` (``plain``): llama.cpp's C API from Python with nothing on top;
* :class:`PonderRun` (``ponder``): ``LoadedModel.reply()``, what ``ponder run`` uses;
* :class:`ChatCompletion` (``ccc``): ``create_chat_completion(stream=True)``;
* :class:`GenerateWithGrammar` (``llama``): ``Llama.generate`` with a GBNF grammar, the
  baseline for ``--grammar``.

All of them sample with the settings below, the R1 recommendation with a fixed seed.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import llama_cpp

# A reasoning-style request. Also chosen because Gemma 270M (a base model) keeps
# going on it, in both prompt layouts used here, instead of writing "<|im_end|>" or
# an end-of-generation token within a few dozen tokens, which would end
# create_chat_completion's stream early.
PROMPT = "Think step by step: what is 17 times 23?"
TEMPERATURE = 0.6
TOP_P = 0.95
TOP_K = 40
MIN_P = 0.0
SEED = 1


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a variant's stream ended."""

    tokens: int
    stopped_early: str | None = None  # why it ended before N tokens, when it did


class Variant(Protocol):
    name: str

    def stream(self, n_tokens: int) -> Iterator[int]:
        """Generate; after each step yield the number of tokens produced so far."""
        ...

    def outcome(self) -> Outcome:
        """Valid once the stream is exhausted."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LoadConfig:
    path: Path
    n_ctx: int
    threads: int

    def llama(self, **extra: Any) -> Any:
        """llama-cpp-python's ``Llama`` on this file: the CPU, these threads, flash attention."""
        return llama_cpp.Llama(
            model_path=str(self.path),
            n_ctx=self.n_ctx,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            n_gpu_layers=0,
            flash_attn=True,
            verbose=False,
            **extra,
        )


# -- (c) the plain loop -----------------------------------------------------------


class PlainLoop:
    """llama.cpp's C API from Python with nothing on top: the floor for any Python app."""

    name = "plain"

    def __init__(self, cfg: LoadConfig, prompt_text: str) -> None:
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0
        mparams.load_mode = llama_cpp.LLAMA_LOAD_MODE_MMAP  # as Llama(use_mmap=True) sets it
        model = llama_cpp.llama_model_load_from_file(str(cfg.path).encode(), mparams)
        if not model:
            raise RuntimeError(f"could not load {cfg.path}")
        self._model = model
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = cfg.n_ctx
        cparams.n_batch = 512
        cparams.n_ubatch = 512
        cparams.n_threads = cfg.threads
        cparams.n_threads_batch = cfg.threads
        cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not ctx:
            raise RuntimeError("could not create a llama.cpp context")
        self._ctx = ctx
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._prompt = self._tokenize(prompt_text)
        self._outcome = Outcome(0)
        self.text = b""

    def _tokenize(self, text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 16
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self._vocab, raw, len(raw), buf, cap, True, True)
        if n < 0:
            raise RuntimeError("prompt tokenization failed")
        return list(buf[:n])

    def _chain(self) -> Any:
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_k(TOP_K))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(TOP_P, 1))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_min_p(MIN_P, 1))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(TEMPERATURE))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(SEED))
        return chain

    def stream(self, n_tokens: int) -> Iterator[int]:
        ctx, vocab = self._ctx, self._vocab
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        prompt = (llama_cpp.llama_token * len(self._prompt))(*self._prompt)
        if llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(prompt, len(prompt))) != 0:
            raise RuntimeError("prompt decode failed")
        chain = self._chain()
        one = (llama_cpp.llama_token * 1)()
        size = 256
        piece = ctypes.create_string_buffer(size)
        pieces: list[bytes] = []
        sample, to_piece = llama_cpp.llama_sampler_sample, llama_cpp.llama_token_to_piece
        decode, batch_one = llama_cpp.llama_decode, llama_cpp.llama_batch_get_one
        try:
            for i in range(n_tokens):
                # feed back the previous token (the last one never needs it)
                if i and decode(ctx, batch_one(one, 1)) != 0:
                    raise RuntimeError("decode failed")
                token = sample(chain, ctx, -1)
                n = to_piece(vocab, token, piece, size, 0, False)
                if n < 0:  # a piece longer than the buffer: never for these vocabularies
                    size = -n
                    piece = ctypes.create_string_buffer(size)
                    n = to_piece(vocab, token, piece, size, 0, False)
                pieces.append(piece.raw[:n])
                one[0] = token
                yield i + 1
        finally:
            llama_cpp.llama_sampler_free(chain)
        self.text = b"".join(pieces)
        self._outcome = Outcome(len(pieces))

    def outcome(self) -> Outcome:
        return self._outcome

    def close(self) -> None:
        llama_cpp.llama_free(self._ctx)
        llama_cpp.llama_model_free(self._model)


# -- (a) Ponder ------------------------------------------------------------------------


class PonderRun:
    """Ponder's core, as ``ponder run`` drives it: Session.resolve/plan/load/reply."""

    name = "ponder"

    def __init__(self, cfg: LoadConfig, workdir: Path, grammar: str | None = None) -> None:
        from ponder.catalog import load_catalog
        from ponder.config import Settings
        from ponder.history import History
        from ponder.paths import Paths
        from ponder.session import ModelOptions, Session

        paths = Paths(config_dir=workdir / "c", data_dir=workdir / "d", cache_dir=workdir / "k")
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        self._history = History.open(paths.history_db)
        self._session = Session(
            settings=Settings(), paths=paths, catalog=load_catalog(), history=self._history
        )
        self._model = self._session.open_model(
            str(cfg.path),
            ModelOptions(n_ctx=cfg.n_ctx, n_threads=cfg.threads, chat_format="chatml"),
        )
        load = self._model.plan
        if load.n_ctx != cfg.n_ctx or load.n_threads != cfg.threads or not load.flash_attn:
            raise RuntimeError(f"Ponder planned {load}, not n_ctx={cfg.n_ctx}/{cfg.threads}")
        self._engine = self._model.engine
        self._count = 0
        self._outcome = Outcome(0)
        self._grammar = grammar
        self._tap_engine()

    def _tap_engine(self) -> None:
        """Count the engine's per-token yields, so lockstep knows where Ponder is.

        Events are not one per token (the splitter holds back whitespace and partial
        tags), so the count comes from one level down. A pass-through generator:
        well under a microsecond per token. The final count comes from
        ``Finished.usage``, as a user sees it.
        """
        engine = self._engine
        inner: Callable[..., Iterator[str]] = engine.generate

        def counting(*args: Any, **kwargs: Any) -> Iterator[str]:
            for text in inner(*args, **kwargs):
                self._count += 1
                yield text

        engine.generate = counting  # type: ignore[method-assign]

    def prompt_text(self) -> str:
        """The exact text Ponder sends, so the plain loop can send the same."""
        from ponder.prompt import Turn

        return self._model.render([Turn("user", PROMPT)]).text

    def prompt_tokens(self) -> list[int]:
        """The exact tokens Ponder's reply sends (BOS as ``LocalModel`` decides it)."""
        text, engine = self.prompt_text(), self._engine
        add_bos = engine.add_bos and not (engine.bos_text and text.startswith(engine.bos_text))
        return engine.tokenize(text, add_bos=add_bos)

    def stream(self, n_tokens: int) -> Iterator[int]:
        from ponder.events import Finished
        from ponder.session import ReplyRequest

        request = ReplyRequest(
            prompt=PROMPT,
            overrides={
                "temperature": TEMPERATURE,
                "top_p": TOP_P,
                "top_k": TOP_K,
                "min_p": MIN_P,
                "seed": SEED,
                "max_tokens": n_tokens,
            },
            ignore_eos=True,
            grammar=self._grammar,
        )
        self._count = 0
        finished: Finished | None = None
        for event in self._model.reply(request):
            if isinstance(event, Finished):
                finished = event
            yield self._count
        if finished is None:
            raise RuntimeError("Ponder's reply ended without a Finished event")
        usage = finished.usage
        tokens = usage.reasoning_tokens + usage.answer_tokens
        early = f"finish_reason={finished.finish_reason}" if tokens < n_tokens else None
        self._outcome = Outcome(tokens, early)

    def outcome(self) -> Outcome:
        return self._outcome

    def close(self) -> None:
        self._session.close()
        self._history.close()


# -- (b) create_chat_completion -----------------------------------------------------


class ChatCompletion:
    """llama-cpp-python's OpenAI-style streaming API, as most Python apps use it."""

    name = "ccc"

    def __init__(self, cfg: LoadConfig) -> None:
        self._llama = cfg.llama(chat_format="chatml")
        self._counted = 0
        self._eog_seen = False
        self._outcome = Outcome(0)
        self._tap_generate()

    def _tap_generate(self) -> None:
        """Count the tokens generate() hands to create_completion, exactly.

        Streamed chunks are not one per token: llama-cpp-python holds back text while
        it could still be a stop sequence or an incomplete UTF-8 character and then
        sends several tokens in one chunk. A pass-through generator: well under a
        microsecond per token.
        """
        inner: Callable[..., Iterator[int]] = self._llama.generate
        vocab = self._llama._model.vocab
        is_eog = llama_cpp.llama_vocab_is_eog

        def counting(*args: Any, **kwargs: Any) -> Iterator[int]:
            for token in inner(*args, **kwargs):
                if is_eog(vocab, token):
                    self._eog_seen = True
                else:
                    self._counted += 1
                yield token

        self._llama.generate = counting  # type: ignore[method-assign]

    def stream(self, n_tokens: int) -> Iterator[int]:
        self._counted = 0
        self._eog_seen = False
        chunks = self._llama.create_chat_completion(
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            max_tokens=n_tokens,
            temperature=TEMPERATURE,
            top_p=TOP_P,
            top_k=TOP_K,
            min_p=MIN_P,
            seed=SEED,
        )
        finish: str | None = None
        for chunk in chunks:
            finish = chunk["choices"][0].get("finish_reason") or finish  # type: ignore[index]
            yield self._counted
        early = None
        if self._counted < n_tokens:
            why = "an end-of-generation token" if self._eog_seen else "a stop sequence"
            early = f"finish_reason={finish}, at {why}"
        self._outcome = Outcome(self._counted, early)

    def outcome(self) -> Outcome:
        return self._outcome

    def close(self) -> None:
        self._llama.close()


# -- (d) Llama.generate with a grammar ----------------------------------------------


class GenerateWithGrammar:
    """llama-cpp-python's own ``Llama.generate`` with a grammar: the floor for
    ``ponder run --grammar``. The same prompt tokens, sampler and seed as Ponder's."""

    name = "llama"

    def __init__(self, cfg: LoadConfig, prompt_tokens: list[int], grammar: str) -> None:
        self._llama = cfg.llama()
        self._prompt = prompt_tokens
        self._grammar = grammar
        self._outcome = Outcome(0)

    def stream(self, n_tokens: int) -> Iterator[int]:
        from llama_cpp.llama_grammar import LlamaGrammar

        llama = self._llama
        llama.set_seed(SEED)
        tokens = llama.generate(
            self._prompt,
            top_k=TOP_K,
            top_p=TOP_P,
            min_p=MIN_P,
            temp=TEMPERATURE,
            repeat_penalty=1.0,
            grammar=LlamaGrammar.from_string(self._grammar, verbose=False),
        )
        made = 0
        try:
            for _ in tokens:
                made += 1
                yield made
                if made >= n_tokens:
                    break
        finally:
            tokens.close()
        self._outcome = Outcome(made)

    def outcome(self) -> Outcome:
        return self._outcome

    def close(self) -> None:
        self._llama.close()
