"""A GGUF on the local engine: render the chat, tokenize it, generate, split.

:class:`LocalModel` is the :class:`~ponder.session.loaded.LoadedModel` whose deltas
come from an engine in this process (llama.cpp). It renders the turns with the
model's template and prompt policy, reuses or restores the KV cache of a continued
chat (:mod:`ponder.session.continuation`), closes the thinking in the prompt when the
thinking budget is 0, and otherwise lets :func:`closing_injector` close it at the
budget or when the user wraps up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ponder import hardware
from ponder.catalog import PromptPolicy
from ponder.engine import Batches, Engine, GenerationStats, Injector, KeepsState
from ponder.history import History
from ponder.prompt import RenderedPrompt, Turn, build_prompt, without_thinking
from ponder.reasoning import ReasoningSplitter
from ponder.sampling import SamplingParams
from ponder.session.candidates import BatchedCandidates, CandidatesSource, SequentialCandidates
from ponder.session.continuation import ChatStates, NextPrefix, reuse_safely
from ponder.session.loaded import LoadedModel, ReplyStart
from ponder.session.local_source import LocalSource, closing_injector
from ponder.session.reply import LiveText, ReplySource
from ponder.session.spec import ModelSpec
from ponder.session.turns import history_text


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
        stats = GenerationStats()  # before the restore: time to first token counts it
        rendered, tokens = self._prompt(start, next_turn=True)
        splitter, inject = self._closing(start, rendered, start.live)
        # generate() checks the prompt against the context before it returns.
        generation = self._engine.generate(tokens, start.sampling, stats, start.cancel, inject)
        budget = start.think_budget
        return LocalSource(self._engine, generation, splitter, stats, think_budget=budget)

    def _candidates(
        self, start: ReplyStart, seeds: list[int], lives: list[LiveText]
    ) -> CandidatesSource:
        engine = self._engine
        if not isinstance(engine, Batches) or len(seeds) > engine.max_sequences:
            return SequentialCandidates(
                lambda i: self._source(
                    replace(start, sampling=replace(start.sampling, seed=seeds[i]), live=lives[i])
                ),
                len(seeds),
            )
        stats = [GenerationStats() for _ in seeds]
        rendered, tokens = self._prompt(start, next_turn=False)
        closings = [self._closing(start, rendered, live) for live in lives]
        injectors = [inject for _, inject in closings]

        def inject(index: int) -> str | None:
            each = injectors[index]
            return each() if each is not None else None

        samplings = [replace(start.sampling, seed=seed) for seed in seeds]
        # generate_many() checks the prompt and the grammar before it returns.
        generation = engine.generate_many(tokens, samplings, stats, start.cancel, inject)
        sources = [
            LocalSource(engine, iter(()), splitter, s, think_budget=start.think_budget)
            for (splitter, _), s in zip(closings, stats, strict=True)
        ]
        return BatchedCandidates(sources, generation)

    def _prompt(self, start: ReplyStart, *, next_turn: bool) -> tuple[RenderedPrompt, list[int]]:
        """The rendered prompt and its tokens, with the cache made ready for them: a
        continued chat's saved state restored, or what the context holds kept only as
        far as it is safe. ``next_turn``: this reply's text will begin the next turn's
        prompt, so its prefix is saved when it ends."""
        turns, live = start.turns, start.live
        keep = start.settings.keep_reasoning
        rendered = self.render(turns, keep_reasoning=keep)
        if start.think_budget == 0:
            rendered = without_thinking(rendered)
        tokens = self._tokenize(rendered)
        engine = self._engine
        if self.states is not None and len(tokens) < engine.n_ctx:
            self.states.restore(tokens)
            if next_turn:
                self._next = lambda: self._next_prefix(turns, live, keep_reasoning=keep)
                self._prompt_len = len(tokens)
        elif isinstance(engine, KeepsState) and tokens:
            reuse_safely(engine, tokens)
        return rendered, tokens

    def _closing(
        self, start: ReplyStart, rendered: RenderedPrompt, live: LiveText
    ) -> tuple[ReasoningSplitter, Injector | None]:
        """A splitter for one reply (or candidate), and what closes its thinking."""
        splitter = ReasoningSplitter(start_in_reasoning=rendered.starts_in_reasoning)
        inject = closing_injector(
            start.wrap_up,
            splitter,
            live,
            think_budget=start.think_budget,
            bridge=self.policy.budget_bridge,
        )
        return splitter, inject

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
