"""The session over the user's own files: settings, catalog, models and history.

Both front ends start here, so neither reads a config file, a catalog or a database
itself; tests build a :class:`~ponder.session.Session` directly with their own parts.
"""

from __future__ import annotations

from ponder.catalog import load_catalog
from ponder.config import load_settings
from ponder.paths import default_paths
from ponder.session.core import Session


def open_session() -> Session:
    """A session under the default paths (``PONDER_HOME`` honoured); the history is
    opened on first use, so a run that saves nothing never touches it."""
    paths = default_paths()
    settings = load_settings(paths)
    catalog = load_catalog(paths.user_catalog)
    return Session(settings=settings, paths=paths, catalog=catalog, history_path=paths.history_db)
