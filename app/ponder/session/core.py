"""The session: the one object both front ends talk to.

A :class:`Session` owns the services (catalog, store, Hub, history, remotes, this
machine) and offers whole operations on them: open a model (resolve, plan, pull if
asked, load and step down after an out-of-memory failure, or connect to a remote), run
one prompt, and reach models, chats and pulls. Front ends never assemble engines,
stores or the history.

One model is loaded at a time. Opening another first retires the current one (no
new reply may start on it, and one that streams is waited for), then closes it,
so two threads never drive one engine and two models never share the memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ponder import download, gguf_info, hardware
from ponder.catalog import Catalog, Resolved
from ponder.chat_settings import ChatSettings
from ponder.config import Settings, models_dir
from ponder.engine import EngineLoader
from ponder.engine.preflight import VERDICTS_FILE, checked_loader
from ponder.errors import Interrupted, ModelLoadError, ModelNotFoundError, UsageError
from ponder.events import Notice, OpenEvent, Planned
from ponder.history import History
from ponder.paths import Paths
from ponder.session import pulls
from ponder.session.continuation import ChatStates, chat_ids, store_sha256
from ponder.session.kv_cache import KVCache
from ponder.session.loaded import LoadedModel, ReplyRequest
from ponder.session.loading import (
    DEFAULT_OPTIONS,
    ModelOptions,
    load_params,
    load_stepping_down,
    model_key,
    probes,
)
from ponder.session.local_model import LocalModel
from ponder.session.remotes import Remotes
from ponder.session.reply import Reply
from ponder.session.spec import ModelSpec, NotInstalledError, Resolver
from ponder.store import InstalledModel, Removal, Store

OnEvent = Callable[[OpenEvent], None]


@dataclass(frozen=True, slots=True)
class RunRequest:
    """Everything ``ponder run`` asks for, in one piece."""

    model: str
    reply: ReplyRequest
    options: ModelOptions = DEFAULT_OPTIONS
    continue_last: bool = False  # -c: continue the most recent chat
    pull_missing: bool = True  # like `ollama run`: a known model not yet here is pulled


class Session:
    def __init__(
        self,
        *,
        settings: Settings,
        paths: Paths,
        catalog: Catalog,
        history: History | None = None,
        history_path: Path | None = None,
        load_engine: EngineLoader | None = None,
        hub: download.Hub | None = None,
        hardware_profile: hardware.HardwareProfile | None = None,
    ) -> None:
        """``history_path`` opens the history on first use (a ``--no-save`` run never
        does); ``hardware_profile`` stands in for probing this machine (recorded
        machines in tests and screenshots), else the machine is probed on first use."""
        self.settings = settings
        self.paths = paths
        self.catalog = catalog
        self.store = Store(models_dir(settings, paths))
        self.hub = hub or download.Hub()
        self.resolver = Resolver(catalog, self.store)
        self.remotes = Remotes(
            settings, paths.config_file, paths.cache_dir / "remotes.json", catalog
        )
        self.kv_cache = KVCache(paths.cache_dir / "kv", settings.kv_cache_mb * 1_000_000)
        self._history = history
        self._history_path = history_path
        self._owns_history = False
        # By default, llama.cpp's load after a child process has opened the file once
        # (ponder.engine.preflight): a file that would abort llama.cpp costs the child.
        self._load_engine = load_engine or checked_loader(paths.cache_dir / VERDICTS_FILE)
        self._hardware = hardware_profile
        self._fixed_hardware = hardware_profile is not None
        self._open_lock = threading.Lock()  # one model opens at a time
        self._current: LoadedModel | None = None
        self._current_key: tuple[object, ...] | None = None

    # -- services ------------------------------------------------------------------

    @property
    def history(self) -> History | None:
        if self._history is None and self._history_path is not None:
            self._history = History.open(self._history_path)
            self._owns_history = True
        return self._history

    def require_history(self) -> History:
        history = self.history
        if history is None:
            raise UsageError("chat history is turned off", hint="drop --no-save")
        return history

    @property
    def current(self) -> LoadedModel | None:
        """The loaded model, if any."""
        return self._current

    def machine(self, *, os_gpus: bool = False) -> hardware.HardwareProfile:
        """This machine as the installed llama.cpp sees it (probed once per session).

        ``os_gpus`` also asks the OS (nvidia-smi, sysfs, ...) for GPUs llama.cpp cannot
        use, which `ponder doctor` reports; loading a model does not need it.
        """
        if os_gpus and not self._fixed_hardware:
            return hardware.probe(probes(), os_gpus=True)
        if self._hardware is None:
            self._hardware = hardware.probe(probes(), os_gpus=False)
        return self._hardware

    # -- models ----------------------------------------------------------------------

    def resolve(
        self,
        ref: str,
        *,
        chat_format: str | None = None,
        chat_template_file: Path | None = None,
    ) -> ModelSpec:
        """A catalog reference or a path to a GGUF file, inspected but not loaded."""
        return self.resolver.resolve(
            ref, chat_format=chat_format, chat_template_file=chat_template_file
        )

    def store_name(self, ref: str) -> str:
        return self.resolver.store_name(ref)

    def installed(self, ref: str) -> InstalledModel:
        """The installed model ``ref`` names (an installed or catalog name, an ``hf:``
        reference), or ModelNotFoundError; never touches the network."""
        found = self.store.find(self.store_name(ref))
        if found is None:
            raise ModelNotFoundError(f"{ref} is not installed", hint="`ponder list` shows what is")
        return found

    def plan(self, spec: ModelSpec, options: ModelOptions = DEFAULT_OPTIONS) -> hardware.Plan:
        """How to load ``spec`` here: the planner, the user's options, what worked before."""
        hw = self.machine()
        remembered = self._load_memory().recall(model_key(spec), hw.fingerprint)
        plan = hardware.plan(
            hardware.ModelFacts.from_gguf(spec.info),
            hw,
            hardware.Overrides(
                n_gpu_layers=options.n_gpu_layers,
                n_ctx=options.n_ctx,
                n_threads=options.n_threads or self.settings.threads,
                remembered=remembered,
            ),
        )
        if plan.verdict == "too_big":
            reason = plan.warnings[0] if plan.warnings else f"{spec.name} does not fit here"
            raise ModelLoadError(reason, hint="`ponder fit` shows what fits this machine")
        return plan

    def open_model(
        self,
        ref: str,
        options: ModelOptions = DEFAULT_OPTIONS,
        *,
        on_event: OnEvent | None = None,
        pull_missing: bool = False,
        cancel: threading.Event | None = None,
    ) -> LoadedModel:
        """Resolve, plan and load ``ref``; the loaded model, ready for replies.

        With ``pull_missing`` a known model that is not downloaded is pulled first
        (unless offline). The same model with the same settings is not loaded twice.
        When llama.cpp runs out of memory the plan steps down (fewer GPU layers, then
        a smaller context) and loading is tried again; what worked is remembered per
        model and machine. ``on_event`` hears the plan, notices and pull progress.
        """
        emit = on_event or (lambda event: None)
        if self.remotes.parse(ref) is not None:
            return self._open_remote(ref, options, emit)
        self.remotes.check_unknown(ref)
        served = self.catalog.served_entry(ref)
        if served is not None:
            return self._open_remote(self.remotes.serving_one(served), options, emit)
        with self._open_lock:
            spec = self._resolve_or_pull(ref, options, emit, pull_missing, cancel)
            plan = self.plan(spec, options)
            emit(Planned(spec.name, spec.summary(), hardware.render_plan(plan), plan.warnings))
            key = (spec.path, load_params(plan), spec.template, spec.template_source)
            current = self._current
            if current is not None and self._current_key == key:
                return current
            self._replace_current(spec.name)
            if cancel is not None and cancel.is_set():
                raise Interrupted("interrupted before the model loaded")
            loaded = self._load(spec, plan, emit)
            self._current, self._current_key = loaded, key
            return loaded

    def _open_remote(self, ref: str, options: ModelOptions, emit: OnEvent) -> LoadedModel:
        """``NAME:MODEL``: connect to the model on the remote (no weights load here)."""
        if options.chat_format or options.chat_template:
            raise UsageError(
                f"{ref} is on a server, which prompts it with its own chat template",
                hint="drop --chat-format / --chat-template, or set the template on the server",
            )
        with self._open_lock:
            key = ("remote", ref, repr(self.remotes.get(ref.partition(":")[0])))
            current = self._current
            if current is not None and self._current_key == key:
                return current
            self._replace_current(ref)
            model = self.remotes.open(ref, lambda: self.history, warn=lambda t: emit(Notice(t)))
            emit(Planned(model.name, f"{model.name}: on {model.placement}", model.placement))
            self._current, self._current_key = model, key
            return model

    def _replace_current(self, by: str) -> None:
        if (current := self._current) is not None:
            current.retire(f"{current.name} is being replaced by {by}")
            self._close_current()

    def _resolve_or_pull(
        self,
        ref: str,
        options: ModelOptions,
        emit: OnEvent,
        pull_missing: bool,
        cancel: threading.Event | None,
    ) -> ModelSpec:
        def resolve(name: str) -> ModelSpec:
            return self.resolve(
                name, chat_format=options.chat_format, chat_template_file=options.chat_template
            )

        try:
            return resolve(ref)
        except NotInstalledError as missing:
            if not pull_missing or download.offline():
                raise
            emit(Notice(f"{missing.message}; pulling it first"))
            installed = self.pull(missing.ref, on_event=emit, cancel=cancel)
            # By the name it was installed under: the quant pulled for this machine may
            # not be the catalog's default that the reference names.
            return resolve(installed.name)

    def _load(self, spec: ModelSpec, plan: hardware.Plan, emit: OnEvent) -> LoadedModel:
        engine, loaded_plan = load_stepping_down(
            self._load_engine,
            spec,
            plan,
            self.machine(),
            self._load_memory(),
            lambda text: emit(Notice(text)),
        )
        sha256 = store_sha256(self.store, spec.name, spec.path)
        states = ChatStates.create(
            self.kv_cache, engine, spec.path, sha256, lambda: chat_ids(self._history)
        )
        return LocalModel(spec, loaded_plan, engine, lambda: self.history, states)

    def _load_memory(self) -> hardware.LoadMemory:
        return hardware.LoadMemory(self.paths.data_dir / "load_settings.json")

    def _close_current(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
            self._current_key = None

    def close(self) -> None:
        """Unload the model and close the history this session opened."""
        with self._open_lock:
            self._close_current()
        if self._owns_history and self._history is not None:
            self._history.close()
            self._history = None

    # -- the headless run ------------------------------------------------------------

    def run(
        self,
        request: RunRequest,
        *,
        on_event: OnEvent | None = None,
        cancel: threading.Event | None = None,
    ) -> Reply:
        """``ponder run``: pick the chat, open the model with the chat's settings, start
        the reply. The chat is checked before anything loads, so a wrong id fails fast."""
        reply = request.reply
        chat_id = reply.chat_id
        if request.continue_last:
            chat_id = self.require_history().last_chat_id()
            if chat_id is None:
                raise UsageError("there is no earlier chat to continue", hint="drop -c")
        options = request.options
        if chat_id is not None:
            chat = self.require_history().get_chat(chat_id)
            saved = ChatSettings.from_saved(chat.settings, chat.system_prompt)
            if options.n_ctx is None and saved.n_ctx is not None:
                options = replace(options, n_ctx=saved.n_ctx)
        save = reply.save and self.settings.save_chats
        loaded = self.open_model(
            request.model,
            options,
            on_event=on_event,
            pull_missing=request.pull_missing,
            cancel=cancel,
        )
        if cancel is not None and cancel.is_set():
            raise Interrupted("interrupted before the reply started")
        return loaded.reply(replace(reply, chat_id=chat_id, save=save), cancel=cancel)

    # -- pulls and the store ---------------------------------------------------------

    def plan_pull(self, ref: str) -> download.PullPlan:
        """What `ponder pull REF` would fetch: asks the Hub for sizes and hashes."""
        return pulls.plan(self.hub, ref, self.default_quant)

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
        ref_or_plan: str | download.PullPlan,
        *,
        on_event: OnEvent | None = None,
        cancel: threading.Event | None = None,
        allow_unverified: bool = False,
    ) -> InstalledModel:
        """Download a model into the store (resumable, verified); events tell the progress.

        A file with no sha256 to check it against is refused unless ``allow_unverified``.
        """
        plan = self.plan_pull(ref_or_plan) if isinstance(ref_or_plan, str) else ref_or_plan
        return pulls.pull(
            plan,
            self.store,
            self.hub,
            on_event or (lambda event: None),
            cancel=cancel,
            allow_unverified=allow_unverified,
        )

    def pending_pulls(self) -> list[tuple[str, int, int]]:
        """Unfinished pulls, oldest first: (name, total bytes, bytes already on disk)."""
        return [(p.name, p.size, p.done(self.store)) for p in download.pending_pulls(self.store)]

    def discard_pull(self, name: str) -> None:
        """Forget an unfinished pull and delete its partial files."""
        download.forget_pending(self.store, name, delete_parts=True)

    def remove_model(self, name: str) -> Removal:
        """Remove an installed model and free its space, its saved chat states with it."""
        installed = self.installed(name)
        files = [self.store.path_of(f).resolve() for f in installed.files]
        removal = self.store.remove(installed.name)
        self.kv_cache.forget_model(files)
        return removal

    def delete_chat(self, chat_id: int) -> None:
        """Delete a chat, all its messages and its saved states."""
        self.require_history().delete_chat(chat_id)
        self.kv_cache.forget_chat(chat_id)

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
