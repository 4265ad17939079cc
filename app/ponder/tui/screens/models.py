"""The model picker: installed models with their plan, the catalog with fit badges.

Enter on an installed model loads it (in a worker; the chat stays usable). Enter on a
catalog model downloads it; the download goes on in the background, its row shows
progress, speed and time left, and x pauses it. A paused or interrupted download
resumes where it stopped, also after a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ponder.session import machine
from ponder.tui.format import size
from ponder.tui.messages import DownloadsChanged
from ponder.tui.widgets.downloads import download_line

if TYPE_CHECKING:
    from ponder.tui.app import PonderApp


class ModelsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "choose", "Load / download", show=True, priority=True),
        Binding("x", "pause", "Pause download"),
        Binding("delete", "discard", "Discard download"),
    ]

    @property
    def ponder(self) -> PonderApp:
        return cast("PonderApp", self.app)

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
        table.add_column("Status", key="status")
        table.add_column("Name", key="name")
        self.query_one("#machine", Static).update(machine.one_line(self.ponder.session))
        self._fill()
        table.focus()

    def _fill(self) -> None:
        app = self.ponder
        session = app.session
        table = self.query_one(DataTable)
        table.clear()
        self.kinds: dict[str, str] = {}
        installed = session.store.installed()
        names = {m.name.lower() for m in installed}
        for model in sorted(installed, key=lambda m: m.name):
            status = "loaded" if app.model and app.model.name == model.name else "installed"
            if app.loading == model.name:
                status = "loading…"
            fit = self._installed_fit(model.name)
            table.add_row(model.name, size(model.size), fit, status, "", key=model.name)
            self.kinds[model.name] = "installed"
        for row in machine.catalog_fits(session):
            if row.ref.lower() in names:
                continue
            state = app.downloads.get(row.ref)
            status = download_line(state) if state else ""
            table.add_row(row.ref, size(row.size), row.badge, status, row.name, key=row.ref)
            self.kinds[row.ref] = "catalog"
        for name, state in app.downloads.items():  # hf: refs and other pulls not listed above
            if name not in self.kinds and name.lower() not in names:
                table.add_row(name, size(state.total), "", download_line(state), "", key=name)
                self.kinds[name] = "catalog"

    def _installed_fit(self, name: str) -> str:
        model = self.ponder.model
        return model.placement if model is not None and model.name == name else ""

    def on_downloads_changed(self, message: DownloadsChanged) -> None:
        table = self.query_one(DataTable)
        for name, state in self.ponder.downloads.items():
            if state.status == "done":
                self._refill_keeping_cursor()
                return
            if name in self.kinds:
                table.update_cell(name, "status", download_line(state))
            else:
                self._refill_keeping_cursor()
                return

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
        app = self.ponder
        if self.kinds.get(name) == "installed":
            if app.load_model(name):
                self.app.pop_screen()
            return
        app.start_download(name)  # failures arrive later, from the worker, as notifications
        self.notify(f"Downloading {name}; it goes on while you chat")

    def action_pause(self) -> None:
        name = self._current()
        if name is not None:
            self.ponder.cancel_download(name)

    def action_discard(self) -> None:
        name = self._current()
        state = self.ponder.downloads.get(name or "")
        if name is None or state is None or state.status in ("starting", "running"):
            self.notify("Pause the download (x) before discarding it.", severity="warning")
            return
        self.ponder.discard_download(name)
        self._refill_keeping_cursor()
