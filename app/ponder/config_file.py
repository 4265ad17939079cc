"""Edits to config.toml that keep what the user wrote: comments, order and layout.

``ponder remote add`` and ``ponder remote rm`` change one ``[remotes.NAME]`` table.
tomlkit parses the file into a document that writes itself back byte for byte apart
from the change, so a hand-edited config loses nothing. The remote is a validated
:class:`RemoteConfig` before it gets here; the new text is written to a temporary file
beside the old one and renamed over it, so a crash or a full disk leaves the old file
whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ponder.errors import ConfigError
from ponder.paths import write_text_atomic
from ponder.remote_settings import RemoteConfig


def set_remote(config_file: Path, name: str, remote: RemoteConfig) -> None:
    """Add or replace ``[remotes.NAME]``."""
    doc = _read(config_file)
    remotes = doc.get("remotes")
    if remotes is None:
        remotes = tomlkit.table(is_super_table=True)
        doc["remotes"] = remotes
    table = tomlkit.table()
    for key, value in _as_toml(remote).items():
        table[key] = value
    remotes[name] = table
    _write(config_file, doc)


def remove_remote(config_file: Path, name: str) -> bool:
    """Drop ``[remotes.NAME]``; False when there was none."""
    doc = _read(config_file)
    remotes = doc.get("remotes")
    if remotes is None or name not in remotes:
        return False
    del remotes[name]
    if not remotes:
        del doc["remotes"]
    _write(config_file, doc)
    return True


def _as_toml(remote: RemoteConfig) -> dict[str, Any]:
    """The fields that differ from the defaults, in a stable order."""
    defaults = RemoteConfig(url=remote.url)
    out: dict[str, Any] = {"url": remote.url}
    for key in ("api_key_env", "model", "verify_tls", "timeout"):
        value = getattr(remote, key)
        if value is not None and value != getattr(defaults, key):
            out[key] = value
    if remote.headers:
        out["headers"] = dict(remote.headers)
    return out


def _read(config_file: Path) -> tomlkit.TOMLDocument:
    if not config_file.exists():
        return tomlkit.document()
    try:
        return tomlkit.parse(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, TOMLKitError) as exc:
        raise ConfigError(
            f"{config_file} could not be read: {exc}", hint="fix the file, or move it aside"
        ) from None


def _write(config_file: Path, doc: tomlkit.TOMLDocument) -> None:
    write_text_atomic(config_file, tomlkit.dumps(doc))
