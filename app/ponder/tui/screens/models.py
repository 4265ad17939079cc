"""The model picker: installed models with their plan, the models each remote serves,
and the catalog with fit badges and the decode speed predicted here.

Remote models are listed from what each server last said (no wait on the network), and
asked again in a worker when the picker opens; Enter on one connects to it.

Enter on an installed model loads it (in a worker; the chat stays usable). Enter on a
catalog model downloads it; the download goes on in the background, its row shows
progress, speed and time left, and x pauses it. A paused or interrupted download
resumes where it stopped, also after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ponder.session import LoadedModel, Session, machine
from ponder.tui.downloads import DownloadState
from ponder.tui.format import size
from ponder.tui.messages import (
    DownloadCancelRequested,
    DownloadDiscardRequested,
    DownloadRequested,
    DownloadsChanged,
    LoadModelRequested,
    ModelChanged,
)
from ponder.tui.widgets.downloads import download_line


class ModelsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "choose", "Load / download", show=True, priority=True),
        Binding("x", "pause", "Pause download"),
        Binding("delete", "discard", "Discard download"),
    ]

    def __init__(
        self,
        session: Session,
        *,
        model: LoadedModel | None,
        loading: str | None,
        downloads: Mapping[str, DownloadState],
    ) -> None:
        super().__init__()
        self.session = session
        self.model = model
        self.loading_model = loading
        self.downloads = downloads
        self.kinds: dict[str, str] = {}
        self._asked: str | None = None  # the model this picker asked the app to load

    def compose(self) -> ComposeResult:
        yield Static("Models", classes="screen-title")
        yield Static("", id="machine")
        table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True, id="models")
        yield table
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Model", key="model")
        table.add_column("Size", key="size")
        table.add_column("Fit", key="fit")
        table.add_column("Speed", key="speed")
        table.add_column("Status", key="status")
        table.add_column("Name", key="name")
        self.query_one("#machine", Static).update(machine.one_line(self.session))
        self._fill()
        table.focus()
        if self.session.remotes.configured:
            self.run_worker(self._probe_remotes, thread=True, exclusive=True, group="remotes")

    def _probe_remotes(self) -> None:
        """Ask each remote what it serves now (off the event loop), then show it."""
        for name in self.session.remotes.configured:
            self.session.remotes.status(name)  # remembered; an unreachable one is skipped
        self.app.call_from_thread(self._refill_if_shown)

    def _refill_if_shown(self) -> None:
        if self.is_attached:
            self._refill_keeping_cursor()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.kinds = {}
        installed = self.session.store.installed()
        names = {m.name.lower() for m in installed}
        loaded = self.model.name if self.model is not None else None
        for model in sorted(installed, key=lambda m: m.name):
            status = "loaded" if loaded == model.name else "installed"
            if self.loading_model == model.name:
                status = "loading…"
            if model.unverified:  # pulled with --allow-unverified: no sha256 vouched for it
                status += " · unverified"
            fit = self.model.placement if self.model is not None and loaded == model.name else ""
            table.add_row(model.name, size(model.size), fit, "", status, "", key=model.name)
            self.kinds[model.name] = "installed"
        for ref, label in self.session.remotes.listed():
            status = "loaded" if loaded == ref else "remote"
            if self.loading_model == ref:
                status = "loading…"
            table.add_row(ref, "", label, "", status, "", key=ref)
            self.kinds[ref] = "installed"  # Enter loads it, like a downloaded model
        for row in machine.catalog_fits(self.session):
            if row.ref.lower() in names:
                continue
            state = self.downloads.get(row.ref)
            status = download_line(state) if state else ""
            table.add_row(
                row.ref, size(row.size), row.badge, row.speed, status, row.name, key=row.ref
            )
            self.kinds[row.ref] = "catalog"
        for name, state in self.downloads.items():  # hf: refs and other pulls not listed above
            if name not in self.kinds and name.lower() not in names:
                table.add_row(name, size(state.total), "", "", download_line(state), "", key=name)
                self.kinds[name] = "catalog"

    def on_model_changed(self, message: ModelChanged) -> None:
        self.model, self.loading_model = message.model, message.loading
        if self._asked is not None and message.loading == self._asked and self.is_current:
            self.dismiss()  # the app took the request: back to the chat

    def on_downloads_changed(self, message: DownloadsChanged) -> None:
        shown, self.downloads = self.downloads, message.downloads
        if shown.keys() - self.downloads.keys() or any(
            state.status == "done" or name not in self.kinds
            for name, state in self.downloads.items()
        ):
            self._refill_keeping_cursor()
            return
        table = self.query_one(DataTable)
        for name, state in self.downloads.items():
            table.update_cell(name, "status", download_line(state))

    def _refill_keeping_cursor(self) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        self._fill()
        table.move_cursor(row=min(row, table.row_count - 1))

    def _current(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

    def action_choose(self) -> None:
        name = self._current()
        if name is None:
            return
        if self.kinds.get(name) == "installed":
            # Refused while a reply streams (the app says why); else ModelChanged closes this.
            self._asked = name
            self.app.post_message(LoadModelRequested(name))
            return
        # Failures arrive later, from the worker, as notifications.
        self.app.post_message(DownloadRequested(name))
        self.notify(f"Downloading {name}; it goes on while you chat")

    def action_pause(self) -> None:
        name = self._current()
        if name is not None:
            self.app.post_message(DownloadCancelRequested(name))

    def action_discard(self) -> None:
        name = self._current()
        state = self.downloads.get(name or "")
        if name is None or state is None or state.active:
            self.notify("Pause the download (x) before discarding it.", severity="warning")
            return
        self.app.post_message(DownloadDiscardRequested(name))
