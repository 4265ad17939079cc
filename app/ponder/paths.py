"""Where Ponder keeps its files.

platformdirs gives the per-OS locations. ``PONDER_HOME`` overrides all of them with
one folder, which is what tests and portable installs use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "ponder"


@dataclass(frozen=True, slots=True)
class Paths:
    """The folders Ponder reads and writes. Nothing is created until asked."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def user_catalog(self) -> Path:
        return self.config_dir / "models.toml"

    @property
    def history_db(self) -> Path:
        return self.data_dir / "history.sqlite3"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def default_paths(env: dict[str, str] | None = None) -> Paths:
    """Resolve the folders, honouring ``PONDER_HOME`` when it is set."""
    environ = os.environ if env is None else env
    home = environ.get("PONDER_HOME")
    if home:
        root = Path(home).expanduser()
        return Paths(config_dir=root / "config", data_dir=root / "data", cache_dir=root / "cache")
    return Paths(
        config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        cache_dir=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
    )
