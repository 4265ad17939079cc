"""The hardware screen: what `ponder doctor` reports, and what fits."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from ponder.errors import PonderError
from ponder.session import Session, machine
from ponder.tui.failures import notify_error, reported


class HardwareScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        yield Static("Hardware", classes="screen-title")
        with VerticalScroll(id="hardware"):
            yield Static("probing this machine…", id="report", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._probe()

    @work(thread=True, exclusive=True, group="probe", exit_on_error=False)
    def _probe(self) -> None:
        with reported(self, self._failed):
            # nvidia-smi and friends: off the UI thread
            self.app.call_from_thread(self._show, machine.hardware_report(self.session))

    def _failed(self, error: PonderError) -> None:
        self.app.call_from_thread(notify_error, self.app, error, title="Hardware probe failed")

    def _show(self, text: str) -> None:
        self.query_one("#report", Static).update(text)
