"""The ledger of pulls that started and have not finished (``.partial/pending.json``)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from ponder.download.hub import RemoteFile
from ponder.download.refs import PullPlan
from ponder.paths import make_dirs, write_text_atomic
from ponder.store import LOCK_MODE, Store

PENDING = "pending.json"
PART_NAME = re.compile(r"[0-9a-f]{64}\.part")  # what partial_path names a file


@dataclass(frozen=True, slots=True)
class PendingPull:
    """A pull that started and has not finished (cancelled, failed, or the app quit).

    ``name`` is what to pull again; the partial files it lists are where it resumes.
    """

    name: str
    size: int
    parts: tuple[str, ...]  # file names under the store's .partial folder

    def done(self, store: Store) -> int:
        """Bytes already on disk for this pull."""
        total = 0
        for part in self.parts:
            with_path = store.partial_dir() / part
            if with_path.exists():
                total += with_path.stat().st_size
        return min(total, self.size)


def pending_pulls(store: Store) -> list[PendingPull]:
    """Unfinished pulls, oldest first; those whose model got installed are left out."""
    data = _read_pending(store)
    installed = {m.name.lower() for m in store.installed()}
    return [
        PendingPull(name=name, size=int(entry["size"]), parts=tuple(entry["parts"]))
        for name, entry in data.items()
        if name.lower() not in installed
    ]


def forget_pending(store: Store, name: str, *, delete_parts: bool = False) -> None:
    """Drop ``name`` from the unfinished pulls (and its partial files when asked)."""
    path = store.partial_dir() / PENDING
    make_dirs(path.parent)
    with FileLock(str(path) + ".lock", mode=LOCK_MODE):
        data = _read_pending(store)
        entry = data.pop(name, None)
        if entry is not None and delete_parts:
            for part in entry["parts"]:
                # The ledger names files in .partial only; anything else is not ours.
                if isinstance(part, str) and PART_NAME.fullmatch(part):
                    (store.partial_dir() / part).unlink(missing_ok=True)
        _write_pending(store, data)


def remember_pending(store: Store, plan: PullPlan) -> None:
    """Record ``plan`` as started, with the partial files it will resume from."""
    path = store.partial_dir() / PENDING
    parts = [
        partial_path(store, remote, expected).name
        for remote, expected in zip(plan.files, plan.expected_sha256, strict=True)
    ]
    make_dirs(path.parent)
    with FileLock(str(path) + ".lock", mode=LOCK_MODE):
        data = _read_pending(store)
        data[plan.name] = {"size": plan.size, "parts": parts}
        _write_pending(store, data)


def _read_pending(store: Store) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((store.partial_dir() / PENDING).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_pending(store: Store, data: dict[str, dict[str, Any]]) -> None:
    path = store.partial_dir() / PENDING
    if not data:
        path.unlink(missing_ok=True)
        return
    write_text_atomic(path, json.dumps(data, indent=2))


def partial_path(store: Store, remote: RemoteFile, expected: str | None) -> Path:
    """Where ``remote``'s bytes collect until verified: named by its sha256 when known."""
    want = remote.sha256 or expected
    key = want or hashlib.sha256(remote.url.encode()).hexdigest()
    return store.partial_dir() / f"{key}.part"
