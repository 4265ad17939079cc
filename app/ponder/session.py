"""The core both front ends call: which model, how to prompt it, and one reply.

A :class:`Session` turns a model reference into a :class:`ModelSpec` (file, GGUF
facts, prompt policy, sampling defaults, template), loads it once and keeps it,
and runs a reply as a stream of typed events. While the reply streams it splits
reasoning from answer, counts tokens per phase and writes both to the history
every quarter second, so a killed process loses at most that moment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ponder import devices, download, gguf_info, hardware
from ponder.catalog import Catalog, Resolved
from ponder.config import Settings, models_dir
from ponder.engine import (
    Engine,
    GenerationStats,
    Injector,
    LlamaEngine,
    LoadParams,
    SamplingParams,
)
from ponder.errors import ModelLoadError, ModelNotFoundError, UsageError
from ponder.events import (
    AnswerDelta,
    ChatEvent,
    Finished,
    ReasoningDelta,
    Started,
    Timings,
    Usage,
)
from ponder.gguf_info import GGUFInfo
from ponder.history import History
from ponder.paths import Paths
from ponder.prompt import (
    FALLBACK_FORMAT,
    PromptPolicy,
    RenderedPrompt,
    Turn,
    build_prompt,
    builtin_template,
    guess_policy,
)
from ponder.reasoning import ReasoningSplitter
from ponder.store import InstalledModel, Store

HISTORY_FLUSH_S = 0.25


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything needed to load and prompt one model file."""

    name: str  # what we show and store: "r1:7b@Q4_K_M" or the file name
    path: Path
    info: GGUFInfo
    policy: PromptPolicy
    sampling: SamplingParams
    template: str
    template_source: str
    catalog_id: str | None = None


@dataclass(frozen=True, slots=True)
class LoadOverrides:
    n_ctx: int | None = None
    n_threads: int | None = None
    n_gpu_layers: int | None = None


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    prompt: str
    system: str | None = None
    chat_id: int | None = None  # continue this chat
    save: bool = True
    keep_reasoning: bool = False  # send earlier turns' thinking back to the model
    chat_settings: dict[str, object] | None = None  # stored with a chat this reply creates


# What closes the thinking when a user asks the model to wrap up: the model reads it
# as its own "</think>" and goes on to the answer.
WRAP_UP_TEXT = "\n</think>\n\n"


@dataclass(slots=True)
class ReplyState:
    """A reply as it streams and once it has finished; the CLI's --json and the TUI read it.

    The token counters move with the stream, so another thread may read them live.
    """

    chat_id: int | None = None
    message_id: int | None = None
    reasoning: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    reasoning_tokens: int = 0
    answer_tokens: int = 0
    wrapped_up: bool = False


EngineLoader = Callable[[GGUFInfo, LoadParams], Engine]


class NotInstalledError(ModelNotFoundError):
    """A known model that is not downloaded yet; front ends may offer to pull it."""

    def __init__(self, message: str, *, ref: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.ref = ref


class Session:
    def __init__(
        self,
        *,
        settings: Settings,
        paths: Paths,
        catalog: Catalog,
        history: History | None,
        load_engine: EngineLoader = LlamaEngine.load,
        hub: download.Hub | None = None,
        hardware_profile: hardware.HardwareProfile | None = None,
    ) -> None:
        """``hardware_profile`` stands in for probing this machine (recorded machines in
        tests and screenshots); without it the machine is probed on first use."""
        self.settings = settings
        self.paths = paths
        self.catalog = catalog
        self.history = history
        self.store = Store(models_dir(settings, paths))
        self.hub = hub or download.Hub()
        self._load_engine = load_engine
        self._engine: Engine | None = None
        self._engine_key: tuple[Path, LoadParams] | None = None
        self._hardware = hardware_profile
        self._fixed_hardware = hardware_profile is not None

    # -- models ------------------------------------------------------------------

    def resolve(
        self,
        ref: str,
        *,
        chat_format: str | None = None,
        chat_template_file: Path | None = None,
    ) -> ModelSpec:
        """A catalog reference or a path to a GGUF file, inspected but not loaded."""
        entry: Resolved | None = None
        if _looks_like_path(ref) and not ref.lower().startswith("hf:"):
            path = Path(ref).expanduser()
            if not path.exists():
                raise ModelNotFoundError(
                    f"no such model file: {ref}", hint="check the path, or use a catalog name"
                )
            entry = _match_file(self.catalog, path.name)
            name = path.name
        else:
            installed, entry = self._installed(ref)
            path = self.store.primary_path(installed)
            name = installed.name
            self.store.touch(installed.name)
        info = gguf_info.inspect(path)
        template, source = self._template(info, entry, chat_format, chat_template_file)
        if entry is not None:
            policy, sampling = _catalog_policy(entry)
            catalog_id: str | None = entry.model.id
        else:
            policy = guess_policy(info.chat_template, info.name or path.name)
            sampling = SamplingParams()
            catalog_id = None
        return ModelSpec(name, path, info, policy, sampling, template, source, catalog_id)

    def _installed(self, ref: str) -> tuple[InstalledModel, Resolved | None]:
        """The installed model a name refers to; never touches the network."""
        name = self.store_name(ref)
        found = self.store.find(name)
        entry = None
        if found is not None and found.catalog_id:
            model = self.catalog.get(found.catalog_id)
            quant = model.quant(found.quant or "") if model else None
            entry = Resolved(model, quant) if model and quant else None
        if found is None:
            raise NotInstalledError(
                f"{name} is not downloaded", ref=ref, hint=f"`ponder pull {ref}` fetches it"
            )
        missing = self.store.missing(found)
        if missing:
            raise NotInstalledError(
                f"{found.name} is installed but {missing[0]} is gone",
                ref=ref,
                hint=f"`ponder pull {ref}` fetches it again",
            )
        return found, entry

    def store_name(self, ref: str) -> str:
        """The store name for what a user typed: an installed name, an ``hf:`` reference
        or a catalog name (its installed quant, else the catalog's choice)."""
        if self.store.find(ref):
            return ref
        if ref.lower().startswith("hf:"):
            return download.hf_name(ref)
        entry = self.catalog.resolve(ref)
        found = self.store.find_catalog(entry.model.id, entry.quant.quant)
        return found.name if found else entry.display_ref

    def plan_pull(self, ref: str) -> download.PullPlan:
        """What `ponder pull REF` would fetch: asks the Hub for sizes and hashes."""
        if ref.lower().startswith("hf:"):
            return download.plan_hf(self.hub, ref)
        entry = self.default_quant(ref)
        quant = entry.quant
        return download.plan_files(
            self.hub,
            name=entry.display_ref,
            repo=quant.repo,
            revision=quant.revision,
            paths=quant.files,
            expected_sha256=quant.sha256 or [],
            catalog_id=entry.model.id,
            quant=quant.quant,
        )

    def default_quant(self, ref: str) -> Resolved:
        """``ref`` with its quant: the one named after ``@``, else the best for this machine
        (the most precise that runs fully on the GPU, else one that fits at all)."""
        entry = self.catalog.resolve(ref)
        if "@" in ref:
            return entry
        best = hardware.best_quant(entry.model, self.machine())
        return self.catalog.resolve(ref, preferred_quant=best.quant if best else None)

    def pull(
        self,
        plan: download.PullPlan,
        *,
        progress: download.ProgressFn | None = None,
        notice: download.NoticeFn | None = None,
        cancel: threading.Event | None = None,
    ) -> InstalledModel:
        return download.pull(
            plan, self.store, hub=self.hub, progress=progress, notice=notice, cancel=cancel
        )

    def import_model(
        self, source: Path, *, name: str | None = None, link: bool = False
    ) -> InstalledModel:
        """Register a local GGUF: checked as GGUF first, then copied into the store
        (hashed on the way) or, with ``link``, left where it is."""
        from ponder.store import import_file

        source = source.expanduser()
        if source.is_file():
            gguf_info.inspect(source)  # a file that is not a GGUF is refused with the reason
        return import_file(self.store, source, name=name or source.stem, link=link)

    @staticmethod
    def _template(
        info: GGUFInfo,
        entry: Resolved | None,
        chat_format: str | None,
        chat_template_file: Path | None,
    ) -> tuple[str, str]:
        if chat_template_file is not None:
            try:
                return chat_template_file.read_text(encoding="utf-8"), "file"
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"cannot read chat template {chat_template_file}: {exc}") from None
        if chat_format is not None:
            return builtin_template(chat_format), f"builtin:{chat_format}"
        if entry is not None and entry.model.prompt.chat_template:
            return entry.model.prompt.chat_template, "catalog"
        if info.chat_template:
            return info.chat_template, "gguf"
        return builtin_template(FALLBACK_FORMAT), f"builtin:{FALLBACK_FORMAT}"

    def machine(self, *, os_gpus: bool = False) -> hardware.HardwareProfile:
        """This machine as the installed llama.cpp sees it (probed once per session).

        ``os_gpus`` also asks the OS (nvidia-smi, sysfs, ...) for GPUs llama.cpp cannot
        use, which `ponder doctor` reports; loading a model does not need it.
        """
        if os_gpus and not self._fixed_hardware:
            return hardware.probe(_probes(), os_gpus=True)
        if self._hardware is None:
            self._hardware = hardware.probe(_probes(), os_gpus=False)
        return self._hardware

    def plan(self, spec: ModelSpec, overrides: LoadOverrides) -> hardware.Plan:
        """How to load ``spec`` here: the planner, the user's overrides, what worked before."""
        hw = self.machine()
        remembered = self._load_memory().recall(_model_key(spec), hw.fingerprint)
        plan = hardware.plan(
            hardware.ModelFacts.from_gguf(spec.info),
            hw,
            hardware.Overrides(
                n_gpu_layers=overrides.n_gpu_layers,
                n_ctx=overrides.n_ctx,
                n_threads=overrides.n_threads or self.settings.threads,
                remembered=remembered,
            ),
        )
        if plan.verdict == "too_big":
            reason = plan.warnings[0] if plan.warnings else f"{spec.name} does not fit here"
            raise ModelLoadError(reason, hint="`ponder fit` shows what fits this machine")
        return plan

    def load(
        self,
        spec: ModelSpec,
        plan: hardware.Plan,
        *,
        notice: Callable[[str], None] | None = None,
    ) -> Engine:
        """The loaded engine for ``spec``, reused while the file and settings are the same.

        When llama.cpp runs out of memory, the plan steps down (fewer GPU layers, then a
        smaller context) and loading is tried again; what worked is remembered for next
        time, per model and machine.
        """
        params = load_params(plan)
        key = (spec.path, params)
        if self._engine is not None and self._engine_key == key:
            return self._engine
        self.close()
        current, stepped = plan, False
        while True:
            try:
                engine = self._load_engine(spec.info, load_params(current))
                break
            except ModelLoadError as failure:
                smaller = _after_oom(failure, current, spec, self.machine())
                if smaller is None:
                    raise
                if notice is not None:
                    notice(
                        f"{failure.message}; retrying with {smaller.n_gpu_layers} GPU layers "
                        f"and a {smaller.n_ctx:,}-token context"
                    )
                current, stepped = smaller, True
        self._load_memory().remember(
            _model_key(spec),
            self.machine().fingerprint,
            current.working_settings(after_oom=stepped),
        )
        self._engine, self._engine_key = engine, key
        return engine

    def _load_memory(self) -> hardware.LoadMemory:
        return hardware.LoadMemory(self.paths.data_dir / "load_settings.json")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
            self._engine_key = None

    # -- replies -----------------------------------------------------------------

    def render(
        self, spec: ModelSpec, engine: Engine, turns: list[Turn], *, keep_reasoning: bool = False
    ) -> RenderedPrompt:
        policy = spec.policy
        if keep_reasoning:
            policy = replace(policy, strip_reasoning_in_history=False)
        return build_prompt(
            turns,
            policy=policy,
            template=spec.template,
            template_source=spec.template_source,
            bos_token=engine.bos_text,
            eos_token=spec.info.eos_token or "",
        )

    def history_turns(
        self, chat_id: int, *, keep_reasoning: bool = False
    ) -> tuple[list[Turn], str | None]:
        """Earlier turns of a saved chat and its system prompt.

        Answers only, unless ``keep_reasoning``: then each answer goes back with its
        thinking in ``<think>`` tags (a template may still drop it; R1's own does).
        """
        history = self._require_history()
        chat = history.get_chat(chat_id)
        turns: list[Turn] = []
        for m in chat.messages:
            if m.role == "user":
                turns.append(Turn("user", m.content))
            elif m.content.strip():
                text = m.content
                if keep_reasoning and m.reasoning.strip():
                    text = f"<think>\n{m.reasoning.strip()}\n</think>\n\n{m.content}"
                turns.append(Turn("assistant", text))
        return turns, chat.system_prompt

    def reply(
        self,
        spec: ModelSpec,
        engine: Engine,
        request: ReplyRequest,
        sampling: SamplingParams,
        *,
        cancel: threading.Event | None = None,
        wrap_up: threading.Event | None = None,
        state: ReplyState | None = None,
    ) -> Generator[ChatEvent, None, None]:
        """Stream one reply: Started, then reasoning/answer deltas, then Finished.

        Setting ``cancel`` ends the reply after the current token (it is kept, marked
        interrupted). Setting ``wrap_up`` while the model thinks closes the thinking
        with ``</think>``, so the model turns to its answer.
        """
        state = state if state is not None else ReplyState()
        turns: list[Turn] = []
        system = request.system
        if request.chat_id is not None:
            turns, saved_system = self.history_turns(
                request.chat_id, keep_reasoning=request.keep_reasoning
            )
            system = system or saved_system
        if system:
            turns.insert(0, Turn("system", system))
        turns.append(Turn("user", request.prompt))
        rendered = self.render(spec, engine, turns, keep_reasoning=request.keep_reasoning)
        add_bos = engine.add_bos and not (
            engine.bos_text and rendered.text.startswith(engine.bos_text)
        )
        tokens = engine.tokenize(rendered.text, add_bos=add_bos)
        stats = GenerationStats()
        splitter = ReasoningSplitter(start_in_reasoning=rendered.starts_in_reasoning)

        # generate() checks the prompt against the context before anything is recorded.
        generation = engine.generate(
            tokens, sampling, stats, cancel, _wrap_up_injector(wrap_up, splitter, state)
        )
        writer = self._start_record(spec, request, system, sampling, state)
        yield Started(model=spec.name, chat_id=state.chat_id)
        yield from self._stream(generation, splitter, stats, engine, writer, state)

    def _start_record(
        self,
        spec: ModelSpec,
        request: ReplyRequest,
        system: str | None,
        sampling: SamplingParams,
        state: ReplyState,
    ) -> _HistoryWriter | None:
        if not request.save or self.history is None:
            state.chat_id = request.chat_id
            return None
        history = self.history
        chat_id = request.chat_id
        if chat_id is None:
            chat_id = history.create_chat(
                title=_title(request.prompt),
                model=spec.name,
                system_prompt=system,
                settings=request.chat_settings,
            )
        history.add_user_message(chat_id, request.prompt)
        message_id = history.start_reply(chat_id, model=spec.name, params=_params(sampling))
        state.chat_id, state.message_id = chat_id, message_id
        return _HistoryWriter(history, message_id)

    def _stream(
        self,
        generation: Iterator[str],
        splitter: ReasoningSplitter,
        stats: GenerationStats,
        engine: Engine,
        writer: _HistoryWriter | None,
        state: ReplyState,
    ) -> Iterator[ChatEvent]:
        clock = _PhaseClock(stats.started_at)
        finished = False
        try:
            for text in generation:
                if splitter.in_reasoning:
                    state.reasoning_tokens += 1
                else:
                    state.answer_tokens += 1
                for delta in splitter.feed(text):
                    clock.saw(delta)
                    yield from self._emit(delta, writer, state)
            for delta in splitter.flush():
                clock.saw(delta)
                yield from self._emit(delta, writer, state)
            finished = True
        finally:
            # An injected "</think>" is not the model's: take it off the counts.
            reasoning_tokens = state.reasoning_tokens - (1 if state.wrapped_up else 0)
            usage = Usage(stats.prompt_tokens, max(reasoning_tokens, 0), state.answer_tokens)
            reason = stats.finish_reason if finished else "interrupted"
            timings = clock.timings(engine.load_s, stats)
            if writer is not None:
                writer.finish(reason, usage, timings)
        yield Finished(finish_reason=reason, usage=usage, timings=timings)

    @staticmethod
    def _emit(
        delta: ReasoningDelta | AnswerDelta, writer: _HistoryWriter | None, state: ReplyState
    ) -> Iterator[ChatEvent]:
        if isinstance(delta, ReasoningDelta):
            state.reasoning.append(delta.text)
        else:
            state.answer.append(delta.text)
        if writer is not None:
            writer.add(delta)
        yield delta

    def _require_history(self) -> History:
        if self.history is None:
            raise UsageError("chat history is turned off", hint="drop --no-save")
        return self.history


class _HistoryWriter:
    """Batches deltas into the history: one write per quarter second, not per token."""

    def __init__(self, history: History, message_id: int) -> None:
        self._history = history
        self._id = message_id
        self._reasoning: list[str] = []
        self._answer: list[str] = []
        self._last = time.monotonic()

    def add(self, delta: ReasoningDelta | AnswerDelta) -> None:
        (self._reasoning if isinstance(delta, ReasoningDelta) else self._answer).append(delta.text)
        now = time.monotonic()
        if now - self._last >= HISTORY_FLUSH_S:
            self.flush()
            self._last = now

    def flush(self) -> None:
        if self._reasoning or self._answer:
            self._history.append_reply(
                self._id, reasoning="".join(self._reasoning), answer="".join(self._answer)
            )
            self._reasoning.clear()
            self._answer.clear()

    def finish(self, reason: str, usage: Usage, timings: Timings) -> None:
        self.flush()
        status = {"stop": "complete", "length": "length"}.get(reason, "interrupted")
        self._history.finish_reply(
            self._id,
            status=status,  # type: ignore[arg-type]
            finish_reason=reason,
            prompt_tokens=usage.prompt_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            answer_tokens=usage.answer_tokens,
            timings=dict(timings.as_dict()),
        )


class _PhaseClock:
    """When the first token came and how long the model thought."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.first: float | None = None
        self.first_reasoning: float | None = None
        self.first_answer: float | None = None

    def saw(self, delta: ReasoningDelta | AnswerDelta) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        if isinstance(delta, ReasoningDelta):
            if self.first_reasoning is None:
                self.first_reasoning = now
        elif self.first_answer is None:
            self.first_answer = now

    def timings(self, load_s: float, stats: GenerationStats) -> Timings:
        end = time.monotonic()
        thinking: float | None = None
        if self.first_reasoning is not None:
            thinking = (self.first_answer or end) - self.started
        decode_tokens = max(stats.completion_tokens - 1, 0)
        return Timings(
            load_s=load_s,
            prompt_eval_s=stats.prompt_eval_s,
            time_to_first_token_s=None if self.first is None else self.first - self.started,
            thinking_s=thinking,
            total_s=end - self.started,
            tokens_per_s=decode_tokens / stats.decode_s if stats.decode_s > 0 else 0.0,
        )


def _wrap_up_injector(
    wrap_up: threading.Event | None, splitter: ReasoningSplitter, state: ReplyState
) -> Injector | None:
    """What the engine asks after each token: the close tag, once, when the user has
    asked to wrap up while the model still thinks. None without an event (headless
    runs), so the engine asks nothing."""
    if wrap_up is None:
        return None
    event = wrap_up

    def inject() -> str | None:
        if not event.is_set() or state.wrapped_up or not splitter.in_reasoning:
            return None
        state.wrapped_up = True
        return WRAP_UP_TEXT

    return inject


def with_overrides(base: SamplingParams, **changes: object) -> SamplingParams:
    """The catalog's sampling with the user's non-None choices on top."""
    return replace(base, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


def load_params(plan: hardware.Plan) -> LoadParams:
    return LoadParams(
        n_ctx=plan.n_ctx,
        n_gpu_layers=plan.n_gpu_layers,
        n_threads=plan.n_threads,
        n_threads_batch=plan.n_threads_batch,
        n_batch=plan.n_batch,
        flash_attn=plan.flash_attn,
        use_mmap=plan.use_mmap,
        use_mlock=plan.use_mlock,
    )


def _probes() -> hardware.Probes:
    return hardware.Probes(ggml_devices=devices.ggml_devices, system_info=devices.system_info)


def _model_key(spec: ModelSpec) -> str:
    return hardware.model_key(spec.path.name, spec.info.file_size)


OOM_WORDS = ("memory", "alloc")


def _after_oom(
    failure: ModelLoadError, plan: hardware.Plan, spec: ModelSpec, hw: hardware.HardwareProfile
) -> hardware.Plan | None:
    """The next smaller plan when llama.cpp ran out of memory; None for other failures."""
    if not any(word in failure.message.lower() for word in OOM_WORDS):
        return None
    return hardware.step_down(plan, hardware.ModelFacts.from_gguf(spec.info), hw)


def _match_file(catalog: Catalog, filename: str) -> Resolved | None:
    """The catalog entry a local file came from, by its file name, if any."""
    for model in catalog.models:
        for quant in model.quants:
            if Path(quant.primary_file).name == filename:
                return Resolved(model, quant)
    return None


def _catalog_policy(entry: Resolved) -> tuple[PromptPolicy, SamplingParams]:
    prompt, sampling = entry.model.prompt, entry.model.sampling
    policy = PromptPolicy(
        system_prompt=prompt.system_prompt,
        think_prefill=prompt.think_prefill,
        strip_reasoning_in_history=prompt.strip_reasoning_in_history,
    )
    return policy, SamplingParams(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k,
        min_p=sampling.min_p,
        repeat_penalty=sampling.repeat_penalty,
    )


def _looks_like_path(ref: str) -> bool:
    return ref.endswith(".gguf") or "/" in ref or "\\" in ref or ref.startswith((".", "~"))


def _title(prompt: str) -> str:
    line = prompt.strip().splitlines()[0] if prompt.strip() else "Untitled"
    return line if len(line) <= 60 else line[:57] + "..."


def _params(sampling: SamplingParams) -> dict[str, object]:
    return {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "min_p": sampling.min_p,
        "repeat_penalty": sampling.repeat_penalty,
        "seed": sampling.seed,
        "max_tokens": sampling.max_tokens,
        "grammar": sampling.grammar is not None,
    }
