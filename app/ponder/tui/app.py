"""The Ponder app: services in, screens on top, model loading and downloads in workers.

The app owns what outlives a screen: the loaded model and the downloads. Screens
get what they show when they are made, hear of changes from the app's past-tense
messages (:class:`ModelChanged`, :class:`DownloadsChanged`), and ask for what they
want with ``...Requested`` messages, which the app may refuse. A download keeps
going while the user chats or switches screens; the app keeps one
:class:`DownloadState` per model. Loading a model runs in a thread worker of its
own group, so the chat stays usable and a newer choice cancels an older one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message

from ponder.errors import Interrupted, PonderError
from ponder.events import DownloadProgress, Notice, OpenEvent
from ponder.session import LoadedModel, ModelOptions, Session
from ponder.tui import collector
from ponder.tui.commands import PonderCommands
from ponder.tui.downloads import DownloadState
from ponder.tui.failures import notify_error, reported
from ponder.tui.messages import (
    DownloadCancelRequested,
    DownloadDiscardRequested,
    DownloadEnded,
    DownloadProgressed,
    DownloadRequested,
    DownloadsChanged,
    LoadModelRequested,
    ModelChanged,
    ModelLoaded,
    ModelLoadFailed,
    ModelNoticed,
)
from ponder.tui.screens.chat import ChatScreen
from ponder.tui.screens.hardware import HardwareScreen
from ponder.tui.screens.models import ModelsScreen
from ponder.tui.screens.welcome import WelcomeScreen

__all__ = ["DownloadState", "PonderApp"]


class PonderApp(App[None]):
    """Chat with local reasoning models."""

    TITLE = "Ponder"
    CSS_PATH = "ponder.tcss"
    COMMANDS = App.COMMANDS | {PonderCommands}
    BINDINGS = [
        Binding("f2", "models", "Models"),
        Binding("f3", "settings", "Settings"),
        Binding("f4", "hardware", "Hardware"),
    ]

    def __init__(
        self,
        session: Session,
        *,
        model: str | None = None,
        grammar: str | None = None,
        export_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.history = session.require_history()
        self.grammar = grammar
        self.export_dir = export_dir or Path.cwd()
        self.wanted_model = model
        self.model: LoadedModel | None = None
        self.loading: str | None = None
        self.downloads: dict[str, DownloadState] = {}
        self._cancels: dict[str, threading.Event] = {}  # one per running download
        for name, total, done in session.pending_pulls():
            self.downloads[name] = DownloadState(name, total, done, status="paused")

    # -- start -------------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen(ChatScreen(self.history, grammar=self.grammar, export_dir=self.export_dir))
        if self.wanted_model is not None:
            # Asked for by name or path (`ponder chat MODEL`): load it, even when nothing
            # is installed yet (a GGUF path, or NAME:MODEL on a server).
            self.load_model(self.wanted_model)
            return
        name = self.session.settings.default_model
        if name is not None and self.session.remotes.parse(name) is not None:
            self.load_model(name)  # NAME:MODEL on a server: nothing to download here
            return
        installed = self.session.store.installed()
        if not installed:
            self.push_screen(WelcomeScreen(self.session, downloads=self._downloads()))
            return
        if name is None:
            recent = max(installed, key=lambda m: (m.last_used or "", m.installed_at))
            name = recent.name
        self.load_model(name)

    def on_unmount(self) -> None:
        # Downloads stop with the app; their partial files stay, and resume next time.
        for cancel in self._cancels.values():
            cancel.set()

    # -- the model ---------------------------------------------------------------

    @property
    def generating(self) -> bool:
        # One worker manager serves the whole app, screens included.
        return any(w.group == "reply" and w.is_running for w in self.workers)

    def load_model(self, name: str, *, n_ctx: int | None = None) -> bool:
        """Load ``name`` in a worker; refused (False) while a reply is streaming."""
        if self.generating:
            self.notify("Stop the reply first (Esc), then switch models.", severity="warning")
            return False
        self.loading = name
        self._announce_model()
        self._load(name, n_ctx)
        return True

    def on_load_model_requested(self, message: LoadModelRequested) -> None:
        self.load_model(message.name, n_ctx=message.n_ctx)

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def _load(self, name: str, n_ctx: int | None) -> None:
        with reported(self, lambda error: self.post_message(ModelLoadFailed(name, error))):
            loaded = self.session.open_model(
                name, ModelOptions(n_ctx=n_ctx), on_event=self._opening
            )
            self.post_message(ModelLoaded(loaded))

    def _opening(self, event: OpenEvent) -> None:
        if isinstance(event, Notice):
            self.post_message(ModelNoticed(event.text))

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.model, self.loading = message.model, None
        collector.settle()
        for warning in message.model.warnings:
            self.notify(warning, severity="warning", timeout=8)
        self._announce_model()

    def on_model_load_failed(self, message: ModelLoadFailed) -> None:
        self.loading = None
        if self.model is not None and self.session.current is not self.model:
            self.model = None  # the old model was unloaded to make room for the new one
        notify_error(self, message.error, title=f"Could not load {message.name}")
        self._announce_model()

    def on_model_noticed(self, message: ModelNoticed) -> None:
        self.notify(message.text, severity="warning", timeout=8)

    def _announce_model(self) -> None:
        self._tell_screens(lambda: ModelChanged(self.model, self.loading))

    # -- downloads ---------------------------------------------------------------

    def start_download(self, name: str) -> None:
        state = self.downloads.get(name)
        if state is not None and state.active:
            return
        self.downloads[name] = DownloadState(
            name, state.total if state else 0, state.done if state else 0
        )
        self._cancels[name] = cancel = threading.Event()
        self._announce_downloads()
        self._download(name, cancel)

    def cancel_download(self, name: str) -> None:
        state, cancel = self.downloads.get(name), self._cancels.get(name)
        if state is not None and state.active and cancel is not None:
            cancel.set()

    def discard_download(self, name: str) -> None:
        self.downloads.pop(name, None)
        cancel = self._cancels.pop(name, None)
        if cancel is not None:
            cancel.set()
        self.session.discard_pull(name)
        self._announce_downloads()

    def on_download_requested(self, message: DownloadRequested) -> None:
        self.start_download(message.name)

    def on_download_cancel_requested(self, message: DownloadCancelRequested) -> None:
        self.cancel_download(message.name)

    def on_download_discard_requested(self, message: DownloadDiscardRequested) -> None:
        self.discard_download(message.name)

    @work(thread=True, group="downloads", exit_on_error=False)
    def _download(self, name: str, cancel: threading.Event) -> None:
        def failed(error: PonderError) -> None:
            self.post_message(DownloadEnded(name, installed=False, error=error))

        with reported(self, failed):
            try:
                self._pull(name, cancel)
            except Interrupted:
                self.post_message(DownloadEnded(name, installed=False))
                return
            self.post_message(DownloadEnded(name, installed=True))

    def _pull(self, name: str, cancel: threading.Event) -> None:
        """Download ``name``, its progress summed over its files as it comes."""
        plan = self.session.plan_pull(name)
        per_file: dict[str, int] = {}
        self.post_message(DownloadProgressed(name, DownloadProgress(name, 0, plan.size)))

        def progress(event: OpenEvent) -> None:
            if not isinstance(event, DownloadProgress):
                return
            per_file[event.filename] = event.done
            total = DownloadProgress(name, sum(per_file.values()), plan.size, event.bytes_per_s)
            self.post_message(DownloadProgressed(name, total))

        self.session.pull(plan, on_event=progress, cancel=cancel)

    def on_download_progressed(self, message: DownloadProgressed) -> None:
        state = self.downloads.get(message.name)
        if state is None or not state.active:
            return
        progress = message.progress
        self.downloads[message.name] = replace(
            state,
            status="running",
            done=progress.done,
            total=progress.total or state.total,
            bytes_per_s=progress.bytes_per_s,
        )
        self._announce_downloads()

    def on_download_ended(self, message: DownloadEnded) -> None:
        name, state = message.name, self.downloads.get(message.name)
        self._cancels.pop(name, None)
        if state is None:
            return
        if message.installed:
            self.downloads[name] = replace(state, status="done", done=state.total)
            self.notify(f"{name} is downloaded and verified", title="Download complete")
            if self.model is None and self.loading is None:
                self.load_model(name)
        elif message.error is not None:
            self.downloads[name] = replace(state, status="failed", error=message.error.message)
            notify_error(self, message.error, title=f"Download of {name} failed")
        else:
            self.downloads[name] = replace(state, status="paused")
            self.notify(f"{name} paused; it resumes where it stopped")
        self._announce_downloads()

    def _downloads(self) -> Mapping[str, DownloadState]:
        return dict(self.downloads)  # the records are immutable; the dict is a copy

    def _announce_downloads(self) -> None:
        self._tell_screens(lambda: DownloadsChanged(self._downloads()))

    def _tell_screens(self, message: Callable[[], Message]) -> None:
        """Post a fresh ``message()`` to every screen (one message has one journey)."""
        for screen in self.screen_stack:
            screen.post_message(message())

    # -- screens -----------------------------------------------------------------

    def action_models(self) -> None:
        if not isinstance(self.screen, ModelsScreen):
            self.push_screen(
                ModelsScreen(
                    self.session,
                    model=self.model,
                    loading=self.loading,
                    downloads=self._downloads(),
                )
            )

    def action_hardware(self) -> None:
        if not isinstance(self.screen, HardwareScreen):
            self.push_screen(HardwareScreen(self.session))

    def action_settings(self) -> None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, ChatScreen):
                if self.screen is not screen:
                    self.pop_screen()
                screen.action_settings()
                return
