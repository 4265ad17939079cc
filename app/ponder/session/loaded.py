"""A model that is loaded and ready: :meth:`LoadedModel.reply` is the reply use case.

:class:`LoadedModel` is what front ends hold, whatever runs the model. It gathers a
chat's turns, settles the sampling and the thinking budget, records the reply in the
history and hands out a :class:`~ponder.session.reply.Reply`; where the deltas come
from is its subclass's one job: :class:`~ponder.session.local_model.LocalModel` (a
GGUF on the local engine) and :class:`~ponder.session.remote_model.RemoteModel` (a
model on a server). It runs one reply at a time: a second ``reply`` while one
streams is refused with a clear message, and so is a reply on a model that is being
replaced or has been closed, so two threads can never drive one engine.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from ponder.catalog import PromptPolicy
from ponder.chat_settings import MAX_VOTES, ChatSettings, check_think_budget
from ponder.errors import ModelLoadError, UsageError
from ponder.history import History
from ponder.prompt import Turn
from ponder.sampling import CHAT_OPTIONS, Number, SamplingParams, check_overrides
from ponder.session.candidates import CandidatesSource
from ponder.session.reply import HistoryWriter, LiveText, Reply, ReplySource
from ponder.session.turns import chat_turns
from ponder.session.vote_reply import VoteReply, VoteWriters


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
    # Reasoning tokens before the thinking is closed (0: no thinking); None: the chat's
    # setting (itself None by default: no budget).
    think_budget: int | None = None
    # Candidates to sample in parallel and vote among (2 – 16); 1: a plain reply.
    votes: int = 1
    ignore_eos: bool = False  # benchmarks: decode a set number of tokens, like --ignore-eos

    def budget_under(self, settings: ChatSettings | None) -> int | None:
        """The thinking budget this request runs under: its own, else the chat's."""
        if self.think_budget is not None or settings is None:
            return self.think_budget
        return settings.think_budget


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
    think_budget: int | None = None


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
    def short_placement(self) -> str:
        """:attr:`placement` in a few words (a server's name without its address)."""
        return self.placement

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
        budget = _think_budget(request, settings)
        live = LiveText()
        live.budget_hit = budget == 0  # closed before it began
        start = ReplyStart(turns, settings, sampling, live, cancel, wrap_up, think_budget=budget)
        # The source checks the prompt (the context, the server's answer) before
        # anything is recorded.
        n_votes = _check_votes(request.votes)
        seeds: list[int] = []
        lives: list[LiveText] = []
        source: ReplySource | None = None
        candidates: CandidatesSource | None = None
        opened: ReplySource | CandidatesSource
        if n_votes > 1:
            seeds = vote_seeds(sampling.seed, n_votes)
            lives = [LiveText() for _ in seeds]
            for each in lives:
                each.budget_hit = live.budget_hit
            candidates = opened = self._candidates(start, seeds, lives)
        else:
            source = opened = self._source(start)
        writer, chat_id, message_id = None, request.chat_id, None
        vote_writers: VoteWriters | None = None
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
                params = sampling.recorded()
                if budget is not None:
                    params["think_budget"] = budget
                if candidates is not None:
                    params["seed"], params["votes"] = seeds[0], {"n": n_votes}
                message_id = history.start_reply(chat_id, model=self.name, params=params)
                if candidates is not None:
                    vote_writers = VoteWriters(history, message_id, n_votes, chat_id)
                else:
                    writer = HistoryWriter(history, message_id, chat_id=chat_id)
        except BaseException:
            opened.close()
            raise
        if candidates is not None:
            return VoteReply(
                model=self.name,
                source=candidates,
                lives=lives,
                seeds=seeds,
                writers=vote_writers,
                chat_id=chat_id,
                message_id=message_id,
                on_done=self._after_reply(None),
            )
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

    def _candidates(
        self, start: ReplyStart, seeds: list[int], lives: list[LiveText]
    ) -> CandidatesSource:
        """The candidates of a voted reply, candidate i sampled with ``seeds[i]`` and
        counted into ``lives[i]``; checks the prompt as :meth:`_source` does."""
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


def _think_budget(request: ReplyRequest, settings: ChatSettings) -> int | None:
    """The budget this reply runs under: the request's, else the chat's; refused with a
    grammar, which decides itself where the thinking ends."""
    budget = request.budget_under(settings)
    if budget is not None:
        try:
            check_think_budget(budget)
        except ValueError as exc:
            raise UsageError(str(exc), hint="give 0 (no thinking) or more tokens") from None
    if budget and request.grammar is not None:
        raise UsageError(
            "a thinking budget cannot be combined with a grammar: the grammar decides where"
            " the thinking ends",
            hint="drop --think-budget, or write the limit into the grammar",
        )
    return budget


def _check_votes(n: int) -> int:
    if not 1 <= n <= MAX_VOTES:
        raise UsageError(f"{n} votes is out of range", hint=f"ask for 2 to {MAX_VOTES}")
    return n


def vote_seeds(seed: int | None, n: int) -> list[int]:
    """One seed per candidate: ``seed``, ``seed + 1``, ... (a random start without one),
    so a voted reply repeats with ``--seed`` and its candidates still differ."""
    base = seed if seed is not None else random.randrange(2**31 - n)
    return [base + i for i in range(n)]


def _keep(settings: ChatSettings | None) -> bool | None:
    return None if settings is None else settings.keep_reasoning


def _require(history: History | None) -> History:
    if history is None:
        raise UsageError("chat history is turned off", hint="drop --no-save")
    return history


def _title(prompt: str) -> str:
    line = prompt.strip().splitlines()[0] if prompt.strip() else "Untitled"
    return line if len(line) <= 60 else line[:57] + "..."
