"""Load settings that worked, remembered per model file and machine.

A small JSON store (:class:`LoadMemory`) keyed by :func:`model_key` and the profile's
fingerprint; the planner takes what it recalls as ``Overrides.remembered``. It is a cache:
a missing or unreadable file is an empty memory, never a reason to fail.
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from ponder.hardware.planner import WorkingSettings
from ponder.paths import write_text_atomic


def model_key(name: str, size: int, sha256: str | None = None) -> str:
    """Identifies a model file: its sha256 when known, else its name and size."""
    return f"sha256:{sha256.lower()}" if sha256 else f"{name}:{size}"


class LoadMemory:
    """Remembers, per model file and machine, the load settings that worked.

    A small JSON file (the caller picks the path, e.g. ``<data dir>/load_settings.json``),
    rewritten atomically (temporary file, then ``os.replace``). A missing or unreadable
    file is an empty memory: it is a cache, never a reason to fail.
    """

    VERSION = 1
    MAX_ENTRIES = 256

    def __init__(self, path: Path) -> None:
        self.path = path

    def recall(self, model: str, fingerprint: str) -> WorkingSettings | None:
        entry = self._entries().get(self._key(model, fingerprint))
        if not isinstance(entry, dict):
            return None
        try:
            return WorkingSettings(
                n_gpu_layers=int(entry["n_gpu_layers"]),
                n_ctx=int(entry["n_ctx"]),
                use_mmap=bool(entry.get("use_mmap", True)),
                after_oom=bool(entry.get("after_oom", False)),
            )
        except (TypeError, KeyError, ValueError, AttributeError):
            return None

    def remember(self, model: str, fingerprint: str, settings: WorkingSettings) -> None:
        entries = self._entries()
        entries[self._key(model, fingerprint)] = {
            "n_gpu_layers": settings.n_gpu_layers,
            "n_ctx": settings.n_ctx,
            "use_mmap": settings.use_mmap,
            "after_oom": settings.after_oom,
            "saved_at": time.time(),
        }
        self._write(_newest(entries, self.MAX_ENTRIES))

    def forget(self, model: str, fingerprint: str) -> None:
        entries = self._entries()
        if entries.pop(self._key(model, fingerprint), None) is not None:
            self._write(entries)

    @staticmethod
    def _key(model: str, fingerprint: str) -> str:
        return f"{model}|{fingerprint}"

    def _entries(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return dict(entries) if isinstance(entries, dict) else {}

    def _write(self, entries: dict[str, Any]) -> None:
        text = json.dumps({"version": self.VERSION, "entries": entries}, indent=1, sort_keys=True)
        with suppress(OSError):  # a full disk, a read-only folder: the next load plans afresh
            write_text_atomic(self.path, text)


def _newest(entries: dict[str, Any], limit: int) -> dict[str, Any]:
    if len(entries) <= limit:
        return entries
    ordered = sorted(entries.items(), key=lambda kv: _saved_at(kv[1]), reverse=True)
    return dict(ordered[:limit])


def _saved_at(entry: Any) -> float:
    try:
        return float(entry.get("saved_at", 0.0))
    except (AttributeError, TypeError, ValueError):
        return 0.0
