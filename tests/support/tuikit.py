"""Building the TUI for tests, snapshots and the TUI benchmark: a real Session, a real
SQLite history under PONDER_HOME, and either the real engine or a scripted one."""

from __future__ import annotations

from pathlib import Path

from ponder.catalog import load_catalog
from ponder.config import load_settings
from ponder.download import Hub
from ponder.engine import LlamaEngine
from ponder.hardware import HardwareProfile
from ponder.history import History
from ponder.paths import default_paths
from ponder.session import Session
from ponder.store import import_file
from ponder.tui.app import PonderApp
from support.scripted import Script, loader

R1_NAME = "DeepSeek-R1-Distill-Test"


def make_app(
    *,
    model_file: Path | None = None,
    model_name: str = R1_NAME,
    script: Script | None = None,
    hardware_profile: HardwareProfile | None = None,
    hub_endpoint: str | None = None,
    grammar: str | None = None,
    export_dir: Path | None = None,
) -> PonderApp:
    """The app over PONDER_HOME; ``model_file`` is installed (linked) as ``model_name``."""
    paths = default_paths()
    history = History.open(paths.history_db)
    session = Session(
        settings=load_settings(paths),
        paths=paths,
        catalog=load_catalog(),
        history=history,
        load_engine=loader(script) if script is not None else LlamaEngine.load,
        hub=Hub(endpoint=hub_endpoint) if hub_endpoint else None,
        hardware_profile=hardware_profile,
    )
    if model_file is not None and session.store.find(model_name) is None:
        import_file(session.store, model_file, name=model_name, link=True)
    return PonderApp(session, grammar=grammar, export_dir=export_dir)
