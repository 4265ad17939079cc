"""First run: this machine in one line, the distill to start with, one key to get it.

The recommendation is the most capable distill that fits and thinks at a usable speed
here (the ``usable_tok_s`` setting), with its predicted speed and why; the slower, bigger
choice is one key (b) away.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, ProgressBar, Static

from ponder.errors import PonderError
from ponder.session import Session, machine
from ponder.tui.downloads import DownloadState
from ponder.tui.failures import notify_error, reported
from ponder.tui.format import size
from ponder.tui.messages import (
    DownloadCancelRequested,
    DownloadRequested,
    DownloadsChanged,
    LoadModelRequested,
)
from ponder.tui.screens.dialogs import TextPromptScreen
from ponder.tui.widgets.downloads import download_line


class WelcomeScreen(Screen[None]):
    BINDINGS = [
        Binding("d", "download", "Download"),
        Binding("b", "download_bigger", "The bigger one", show=False),
        Binding("i", "import_file", "Import a GGUF"),
        Binding("m", "models", "Other models"),
        Binding("x", "cancel", "Cancel download", show=False),
        Binding("escape", "later", "Later"),
    ]

    def __init__(self, session: Session, *, downloads: Mapping[str, DownloadState]) -> None:
        super().__init__()
        self.session = session
        self.downloads = downloads
        self.ref: str | None = None
        self.bigger: str | None = None

    def compose(self) -> ComposeResult:
        choice = machine.recommend(self.session)
        with Vertical(id="welcome"):
            yield Label("Welcome to Ponder", classes="welcome-title")
            yield Static(
                "Reasoning models that run on this machine. They think first, then answer.",
                classes="welcome-text",
            )
            yield Static(f"This machine: {machine.one_line(self.session)}", id="machine")
            if choice is None:
                yield Static(
                    "No R1 distill fits this machine's memory. Import a smaller GGUF (i), or "
                    "see the hardware report (F4).",
                    id="recommendation",
                )
            else:
                self.ref = choice.ref
                yield Static(
                    f"Recommended: {choice.name} ({choice.ref}), "
                    f"{size(choice.size)} download, runs on {choice.placement} with a "
                    f"{choice.n_ctx:,}-token context, {choice.speed}: {choice.reason}.",
                    id="recommendation",
                    markup=False,
                )
                bigger = choice.bigger
                if bigger is not None:
                    self.bigger = bigger.ref
                    yield Static(
                        f"Bigger: {bigger.name} ({bigger.ref}), {size(bigger.size)}, runs on "
                        f"{bigger.placement}, {bigger.speed}: {bigger.reason} (b).",
                        id="bigger",
                        markup=False,
                    )
            yield ProgressBar(total=100, show_eta=False, id="progress")
            yield Static("", id="download-status")
            keys = "d  download it  " + ("b  bigger one  " if self.bigger else "")
            yield Static(
                keys + "i  import a GGUF  m  other models  Esc  later",
                classes="welcome-keys",
            )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._show()

    def _show(self) -> None:
        state = self.downloads.get(self.ref or "")
        bar = self.query_one(ProgressBar)
        bar.display = state is not None
        status = self.query_one("#download-status", Static)
        if state is None:
            status.update("")
            return
        bar.update(progress=state.fraction * 100)
        status.update(download_line(state))
        if state.status == "done":
            self.dismiss()

    def on_downloads_changed(self, message: DownloadsChanged) -> None:
        self.downloads = message.downloads
        self._show()

    def action_download(self) -> None:
        if self.ref is None:
            self.notify("Nothing to recommend here; import a GGUF (i) instead.")
            return
        self.app.post_message(DownloadRequested(self.ref))

    def action_download_bigger(self) -> None:
        if self.bigger is None:
            self.notify("Nothing bigger fits this machine.")
            return
        self.ref = self.bigger
        self._show()
        self.app.post_message(DownloadRequested(self.bigger))

    def action_cancel(self) -> None:
        if self.ref:
            self.app.post_message(DownloadCancelRequested(self.ref))

    async def action_models(self) -> None:
        await self.app.run_action("models")

    def action_later(self) -> None:
        self.dismiss()

    def action_import_file(self) -> None:
        def chosen(path: str | None) -> None:
            if path and path.strip():
                self._import(Path(path.strip()))

        self.app.push_screen(
            TextPromptScreen("Import a GGUF file", placeholder="/path/to/model.gguf"), chosen
        )

    @work(thread=True, group="import", exit_on_error=False)
    def _import(self, path: Path) -> None:
        with reported(self, self._import_failed):
            try:
                model = self.session.import_model(path)
            except OSError as exc:
                raise PonderError(f"cannot import {path}: {exc.strerror or exc}") from exc
            self.app.call_from_thread(self._imported, model.name)

    def _import_failed(self, error: PonderError) -> None:
        self.app.call_from_thread(notify_error, self.app, error, title="Import failed")

    def _imported(self, name: str) -> None:
        self.notify(f"Imported {name}")
        self.app.post_message(LoadModelRequested(name))
        if self.is_current:
            self.dismiss()
