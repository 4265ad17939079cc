"""A model that is loaded and ready: :meth:`LoadedModel.reply` is the reply use case.

:class:`LoadedModel` is what front ends hold, whatever runs the model. It gathers a
chat's turns, settles the sampling, records the reply in the history and hands out a
:class:`~ponder.session.reply.Reply`; where the deltas come from is its subclass's
one job: :class:`LocalModel` (a GGUF on the local engine: render, tokenize,
generate) here, :class:`~ponder.session.remote_model.RemoteModel` (a model on a
server) beside it. It runs one reply at a time: a second ``reply`` while one streams
is refused with a clear message, and so is a reply on a model that is being replaced
or has been closed, so two threads can never drive one engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from ponder import hardware
from ponder.catalog import PromptPolicy
from ponder.chat_settings import ChatSettings
from ponder.engine import Engine, GenerationStats, KeepsState
from ponder.errors import ModelLoadError, UsageError
from ponder.history import History
from ponder.prompt import RenderedPrompt, Turn, build_prompt
from ponder.reasoning import ReasoningSplitter
from ponder.sampling import CHAT_OPTIONS, Number, SamplingParams, check_overrides
from ponder.session.continuation import ChatStates, NextPrefix, reuse_safely
from ponder.session.local_source import LocalSource, wrap_up_injector
from ponder.session.reply import HistoryWriter, LiveText, Reply, ReplySource
from ponder.session.spec import ModelSpec
from ponder.session.turns import chat_turns, history_text


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    """One prompt and how to answer it.

    ``settings`` are the chat's own (a new chat keeps them; for a saved chat, None
    means the settings saved with it). ``overrides`` are one-off sampling values, such
    as flags on the command line, that win over everything.
    """

    prompt: str
    chat_id: int | None = None  # continue this chat
    system: str | None = None
    save: bool = True
    settings: ChatSettings | None = None
    overrides: Mapping[str, Number | None] = field(default_factory=dict)
    grammar: str | None = None  # GBNF text
    ignore_eos: bool = False  # benchmarks: decode a set number of tokens, like --ignore-eos


@dataclass(frozen=True, slots=True)
class ReplyStart:
    """What a subclass needs to start one reply's deltas: the turns, the chat's settings,
    the sampling, the live text to count into, and the user's stop and wrap-up events."""

    turns: list[Turn]
    settings: ChatSettings
    sampling: SamplingParams
    live: LiveText
    cancel: threading.Event | None
    wrap_up: threading.Event | None


class LoadedModel:
    """What every loaded model offers, local or remote; subclasses start the deltas."""

    def __init__(self, history: Callable[[], History | None]) -> None:
        self._history = history
        self._busy = threading.Lock()  # held while a reply streams
        self._retiring: str | None = None  # why no new reply may start
        self._closed = False

    # -- what front ends show ------------------------------------------------------

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def policy(self) -> PromptPolicy:
        raise NotImplementedError

    @property
    def defaults(self) -> SamplingParams:
        """The recommended sampling (the catalog entry's, else Ponder's defaults)."""
        raise NotImplementedError

    @property
    def n_ctx(self) -> int:
        raise NotImplementedError

    @property
    def placement(self) -> str:
        """Where it runs: "GPU", "CPU", "GPU 20/33 layers", or the server's address."""
        raise NotImplementedError

    @property
    def warnings(self) -> tuple[str, ...]:
        return ()

    @property
    def takes_system_prompt(self) -> bool:
        """False for models that get their system prompt folded into the user turn."""
        return self.policy.system_prompt

    @property
    def streaming(self) -> bool:
        return self._busy.locked()

    def recommended(self) -> ChatSettings:
        """The settings a chat follows until it sets its own: the catalog's, this context."""
        sampling = self.defaults
        return ChatSettings(
            sampling={o.name: getattr(sampling, o.name) for o in CHAT_OPTIONS if o.catalog},
            n_ctx=self.n_ctx,
        )

    def sampling_for(
        self, settings: ChatSettings, overrides: Mapping[str, object]
    ) -> SamplingParams:
        """The catalog's sampling, the chat's settings over it, one-off overrides on top."""
        return self.defaults.with_overrides(settings.sampling).with_overrides(
            check_overrides(overrides)
        )

    # -- the use case --------------------------------------------------------------

    def reply(
        self,
        request: ReplyRequest,
        *,
        cancel: threading.Event | None = None,
        wrap_up: threading.Event | None = None,
    ) -> Reply:
        """Start one reply: iterate it for Started, reasoning/answer deltas, Finished.

        The prompt is checked (against the context, or by the server) before anything
        is recorded. Setting ``cancel`` ends the reply after the current token (it is
        kept, marked interrupted). Setting ``wrap_up`` while the model thinks closes
        the thinking with ``</think>``, so the model turns to its answer.
        """
        self._check_open()
        self._before_reply()
        if not self._busy.acquire(blocking=False):
            raise UsageError(
                f"a reply from {self.name} is still streaming", hint="stop it first (Esc)"
            )
        try:
            self._check_open()
            return self._start(request, cancel, wrap_up)
        except BaseException:
            self._busy.release()
            raise

    def _start(
        self,
        request: ReplyRequest,
        cancel: threading.Event | None,
        wrap_up: threading.Event | None,
    ) -> Reply:
        # Opened only when needed: a --no-save run that continues nothing never touches
        # the history, so it still runs when the history's disk is full.
        history = self._history() if request.save or request.chat_id is not None else None
        saved: ChatSettings | None = None
        turns: list[Turn] = []
        system = request.system
        if request.chat_id is not None:
            history = _require(history)
            turns, saved_system, saved = chat_turns(
                history, request.chat_id, keep_reasoning=_keep(request.settings)
            )
            system = system or saved_system
        settings = request.settings or saved or ChatSettings()
        if request.chat_id is None:
            system = system or settings.system_prompt
        if system:
            turns.insert(0, Turn("system", system))
        turns.append(Turn("user", request.prompt))
        sampling = replace(
            self.sampling_for(settings, request.overrides),
            grammar=request.grammar,
            ignore_eos=request.ignore_eos,
        )
        live = LiveText()
        # The source checks the prompt (the context, the server's answer) before
        # anything is recorded.
        source = self._source(ReplyStart(turns, settings, sampling, live, cancel, wrap_up))
        writer, chat_id, message_id = None, request.chat_id, None
        try:
            if request.save and history is not None:
                if chat_id is None:
                    chat_id = history.create_chat(
                        title=_title(request.prompt),
                        model=self.name,
                        system_prompt=system,
                        settings=request.settings.to_saved() if request.settings else None,
                    )
                history.add_user_message(chat_id, request.prompt)
                message_id = history.start_reply(
                    chat_id, model=self.name, params=sampling.recorded()
                )
                writer = HistoryWriter(history, message_id, chat_id=chat_id)
        except BaseException:
            source.close()
            raise
        return Reply(
            model=self.name,
            source=source,
            writer=writer,
            chat_id=chat_id,
            message_id=message_id,
            live=live,
            on_done=self._after_reply(chat_id if request.save else None),
        )

    def _before_reply(self) -> None:
        """Called before a reply takes the model (a local model waits for its last save's
        copy of the cache here)."""

    def _after_reply(self, chat_id: int | None) -> Callable[[], None]:
        """What releases the model when a reply ends; ``chat_id`` is the chat the reply
        was saved in (None when it was not)."""
        return self._busy.release

    def _source(self, start: ReplyStart) -> ReplySource:
        raise NotImplementedError

    # -- replacing and closing -----------------------------------------------------

    def retire(self, why: str) -> None:
        """No new reply may start (``why`` says so); waits for one that streams to end."""
        self._retiring = why
        with self._busy:
            pass

    def close(self) -> None:
        self.retire(f"{self.name} was unloaded")
        if not self._closed:
            self._closed = True
            self._close_engine()

    def _close_engine(self) -> None:
        raise NotImplementedError

    def _check_open(self) -> None:
        if self._retiring is not None:
            raise ModelLoadError(self._retiring, hint="send it again once the model has loaded")


class LocalModel(LoadedModel):
    """A GGUF loaded into this process by a local engine (llama.cpp).

    With ``states``, a continued chat starts from its saved KV cache when that shares
    more of the prompt than the context holds, and each saved reply leaves the cache of
    what the next turn will share on disk (:mod:`ponder.session.continuation`).
    """

    def __init__(
        self,
        spec: ModelSpec,
        plan: hardware.Plan,
        engine: Engine,
        history: Callable[[], History | None],
        states: ChatStates | None = None,
    ) -> None:
        super().__init__(history)
        self.spec = spec
        self.plan = plan
        self._engine = engine
        self.states = states
        self._next: NextPrefix | None = None  # the running reply's next-turn prefix
        self._prompt_len = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def policy(self) -> PromptPolicy:
        return self.spec.policy

    @property
    def defaults(self) -> SamplingParams:
        return self.spec.sampling

    @property
    def engine(self) -> Engine:
        """The engine underneath (benchmarks tap it; front ends have no use for it)."""
        return self._engine

    @property
    def n_ctx(self) -> int:
        return self.plan.n_ctx

    @property
    def placement(self) -> str:
        return placement(self.plan.n_gpu_layers, self.plan.n_layers_total)

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.plan.warnings

    def _source(self, start: ReplyStart) -> ReplySource:
        turns, live, sampling = start.turns, start.live, start.sampling
        keep = start.settings.keep_reasoning
        rendered = self.render(turns, keep_reasoning=keep)
        tokens = self._tokenize(rendered)
        engine = self._engine
        stats = GenerationStats()  # before the restore: time to first token counts it
        if self.states is not None and len(tokens) < engine.n_ctx:
            self.states.restore(tokens)
            self._next = lambda: self._next_prefix(turns, live, keep_reasoning=keep)
            self._prompt_len = len(tokens)
        elif isinstance(engine, KeepsState) and tokens:
            reuse_safely(engine, tokens)
        splitter = ReasoningSplitter(start_in_reasoning=rendered.starts_in_reasoning)
        # generate() checks the prompt against the context before it returns.
        generation = engine.generate(
            tokens, sampling, stats, start.cancel, wrap_up_injector(start.wrap_up, splitter, live)
        )
        return LocalSource(engine, generation, splitter, stats)

    def _tokenize(self, rendered: RenderedPrompt) -> list[int]:
        engine = self._engine
        add_bos = engine.add_bos and not (
            engine.bos_text and rendered.text.startswith(engine.bos_text)
        )
        return engine.tokenize(rendered.text, add_bos=add_bos)

    def _next_prefix(self, turns: list[Turn], live: LiveText, *, keep_reasoning: bool) -> list[int]:
        """How the next turn's prompt will begin: these turns, this reply as the history
        sends it back (:func:`history_text`), then a user turn."""
        upcoming = list(turns)
        if live.answer.strip():
            text = history_text(live.answer, live.reasoning, keep_reasoning=keep_reasoning)
            upcoming.append(Turn("assistant", text))
        upcoming.append(Turn("user", "…"))
        return self._tokenize(self.render(upcoming, keep_reasoning=keep_reasoning))

    def _before_reply(self) -> None:
        if self.states is not None:
            self.states.wait_copied()

    def _after_reply(self, chat_id: int | None) -> Callable[[], None]:
        upcoming, self._next = self._next, None
        states = self.states
        if states is None or chat_id is None or upcoming is None:
            return self._busy.release
        prompt_len = self._prompt_len
        return lambda: states.save_later(chat_id, upcoming, prompt_len, self._busy.release)

    def render(self, turns: list[Turn], *, keep_reasoning: bool = False) -> RenderedPrompt:
        """The exact prompt text for ``turns`` under this model's policy and template."""
        policy = self.spec.policy
        if keep_reasoning:
            policy = policy.model_copy(update={"strip_reasoning_in_history": False})
        return build_prompt(
            turns,
            policy=policy,
            template=self.spec.template,
            template_source=self.spec.template_source,
            bos_token=self._engine.bos_text,
            eos_token=self.spec.info.eos_token or "",
        )

    def _close_engine(self) -> None:
        if self.states is not None:
            self.states.join()
        self._engine.close()


def placement(n_gpu_layers: int, n_layers_total: int) -> str:
    """Where a plan puts the layers: "GPU", "CPU" or "GPU 20/33 layers"."""
    if n_gpu_layers <= 0:
        return "CPU"
    if n_gpu_layers >= n_layers_total:
        return "GPU"
    return f"GPU {n_gpu_layers}/{n_layers_total} layers"


def _keep(settings: ChatSettings | None) -> bool | None:
    return None if settings is None else settings.keep_reasoning


def _require(history: History | None) -> History:
    if history is None:
        raise UsageError("chat history is turned off", hint="drop --no-save")
    return history


def _title(prompt: str) -> str:
    line = prompt.strip().splitlines()[0] if prompt.strip() else "Untitled"
    return line if len(line) <= 60 else line[:57] + "..."
