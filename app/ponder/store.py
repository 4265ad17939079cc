"""The local model store: which models are installed, from where, with which hashes.

Files live at ``<models dir>/<owner>/<repo>/<path in repo>`` (or anywhere, for
``ponder import --link``). A JSON manifest beside them records, per model: its name,
catalog id and quant, source repo, revision and resolved commit, each file's path,
size and sha256, and when it was installed and last used. It is rewritten atomically
(temp file, fsync, rename) under a file lock, so two processes never interleave
writes and a crash never leaves half a manifest.

A file deleted behind Ponder's back shows up as ``missing`` in listings and in
``verify``; nothing here crashes on it. Removal deletes only what lies inside the
models dir (resolved): a manifest entry that points elsewhere (written by hand, or by
an older Ponder that let a hostile name climb out) is forgotten and its file kept.
A model pulled with ``--allow-unverified`` is recorded as ``unverified``: its sha256
is what arrived, not what the Hub or the catalog vouched for.

Folders are created at most 0755 and files at most 0644 (the manifest, its lock and
temporary files 0600), whatever the umask (``ponder.paths``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from ponder.errors import ConfigError, ModelNotFoundError
from ponder.paths import create_file, inside, make_dirs, write_text_atomic

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
HASH_CHUNK = 4 * 1024 * 1024
LOCK_MODE = 0o600  # lock files: only the user's processes take them


@dataclass(frozen=True, slots=True)
class StoredFile:
    repo_path: str  # the path inside the source repo ("" for an imported file)
    local: str  # absolute, or relative to the models dir
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class InstalledModel:
    name: str  # "r1:7b@Q4_K_M", "hf:owner/repo:Q5_K_M", or an imported name
    files: tuple[StoredFile, ...]
    catalog_id: str | None = None
    quant: str | None = None
    repo: str | None = None
    revision: str | None = None
    commit: str | None = None
    installed_at: str = ""
    last_used: str | None = None
    linked: bool = False  # imported with --link: the file stays where it was
    unverified: bool = False  # pulled with --allow-unverified: no sha256 vouched for it

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True, slots=True)
class FileCheck:
    path: Path
    status: str  # "ok", "missing", "size", "sha256"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Removal:
    """What :meth:`Store.remove` did: bytes freed, and files it would not delete because
    they lie outside the models dir."""

    freed: int
    kept: tuple[Path, ...] = ()


@dataclass(slots=True)
class _Manifest:
    models: list[InstalledModel] = field(default_factory=list)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


class Store:
    """The manifest of installed models under one models directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._manifest_path = root / MANIFEST
        self._lock_path = root / f".{MANIFEST}.lock"

    # -- reading -----------------------------------------------------------------

    def installed(self) -> list[InstalledModel]:
        return self._read().models

    def find(self, name: str) -> InstalledModel | None:
        wanted = name.lower()
        for model in self.installed():
            if model.name.lower() == wanted:
                return model
        return None

    def find_catalog(self, catalog_id: str, quant: str) -> InstalledModel | None:
        for model in self.installed():
            if model.catalog_id == catalog_id and (model.quant or "").lower() == quant.lower():
                return model
        return None

    def path_of(self, stored: StoredFile) -> Path:
        local = Path(stored.local)
        return local if local.is_absolute() else self.root / local

    def primary_path(self, model: InstalledModel) -> Path:
        return self.path_of(model.files[0])

    def missing(self, model: InstalledModel) -> list[Path]:
        return [self.path_of(f) for f in model.files if not self.path_of(f).is_file()]

    def partial_dir(self) -> Path:
        return self.root / ".partial"

    # -- writing -----------------------------------------------------------------

    def add(self, model: InstalledModel) -> None:
        """Record ``model``, replacing an entry of the same name."""
        with self._locked() as manifest:
            manifest.models = [m for m in manifest.models if m.name.lower() != model.name.lower()]
            manifest.models.append(model)

    def touch(self, name: str) -> None:
        with self._locked() as manifest:
            manifest.models = [
                replace(m, last_used=now_iso()) if m.name.lower() == name.lower() else m
                for m in manifest.models
            ]

    def remove(self, name: str) -> Removal:
        """Forget ``name`` and delete its files (not linked ones, nor any outside the
        models dir)."""
        with self._locked() as manifest:
            model = next((m for m in manifest.models if m.name.lower() == name.lower()), None)
            if model is None:
                raise ModelNotFoundError(
                    f"{name} is not installed", hint="`ponder list` shows what is"
                )
            manifest.models = [m for m in manifest.models if m is not model]
            freed, kept = 0, []
            if not model.linked:
                for stored in model.files:
                    path = self.path_of(stored)
                    if inside(self.root, path):
                        freed += _unlink(path)
                    elif path.exists():
                        kept.append(path.resolve())
                self._prune_dirs(model)
            return Removal(freed, tuple(kept))

    def verify(
        self, model: InstalledModel, progress: Callable[[int], None] | None = None
    ) -> list[FileCheck]:
        checks = []
        for stored in model.files:
            path = self.path_of(stored)
            if not path.is_file():
                checks.append(FileCheck(path, "missing", "the file is gone"))
            elif path.stat().st_size != stored.size:
                actual = path.stat().st_size
                checks.append(
                    FileCheck(path, "size", f"{actual:,} bytes, expected {stored.size:,}")
                )
            else:
                digest = sha256_file(path, progress)
                ok = digest == stored.sha256
                detail = "" if ok else f"sha256 {digest}, expected {stored.sha256}"
                checks.append(FileCheck(path, "ok" if ok else "sha256", detail))
        return checks

    # -- manifest I/O ------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[_Manifest]:
        make_dirs(self.root)
        with FileLock(str(self._lock_path), mode=LOCK_MODE):
            manifest = self._read()
            yield manifest
            self._write(manifest)

    def _read(self) -> _Manifest:
        try:
            raw = json.loads(self._manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return _Manifest()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"the model manifest {self._manifest_path} is damaged: {exc}",
                hint="restore it from a backup, or move it aside and `ponder import` the files",
            ) from None
        return _Manifest([_model_from_json(m) for m in raw.get("models", [])])

    def _write(self, manifest: _Manifest) -> None:
        document = {"version": MANIFEST_VERSION, "models": [asdict(m) for m in manifest.models]}
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        write_text_atomic(self._manifest_path, text)

    def _prune_dirs(self, model: InstalledModel) -> None:
        """Remove folders the model's files leave empty, up to the models dir."""
        root = self.root.resolve()
        for stored in model.files:
            folder = self.path_of(stored).resolve().parent
            while folder != root and folder.is_relative_to(root):
                try:
                    folder.rmdir()
                except OSError:
                    break
                folder = folder.parent


def _unlink(path: Path) -> int:
    try:
        size = path.stat().st_size
        path.unlink()
        return size
    except FileNotFoundError:
        return 0


def _model_from_json(data: dict[str, Any]) -> InstalledModel:
    files = tuple(StoredFile(**f) for f in data.get("files", []))
    fields = {k: v for k, v in data.items() if k != "files"}
    return InstalledModel(files=files, **fields)


def import_file(store: Store, source: Path, *, name: str, link: bool) -> InstalledModel:
    """Register an existing GGUF: copied into the store (hashed on the way), or linked.

    The caller has checked nothing; this refuses a missing file or a taken name.
    The copy goes to a temporary name first, so an interrupted import leaves no
    half file under the real name.
    """
    if not source.is_file():
        raise ModelNotFoundError(f"no such file: {source}")
    if store.find(name) is not None:
        raise ConfigError(
            f"a model named {name} is already installed", hint="choose another --name"
        )
    if link:
        stored = StoredFile("", str(source.resolve()), source.stat().st_size, sha256_file(source))
    else:
        folder = name.replace("/", "_").replace("\\", "_")
        if folder in ("", ".", ".."):
            folder = folder.replace(".", "_") or "_"
        dest = store.root / "imported" / folder / source.name
        make_dirs(dest.parent)
        tmp = dest.with_name(dest.name + ".importing")
        digest = hashlib.sha256()
        fd = create_file(tmp, os.O_WRONLY | os.O_TRUNC)
        with source.open("rb") as src, os.fdopen(fd, "wb") as out:
            while chunk := src.read(HASH_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
        stored = StoredFile(
            "", str(dest.relative_to(store.root)), dest.stat().st_size, digest.hexdigest()
        )
    model = InstalledModel(name=name, files=(stored,), installed_at=now_iso(), linked=link)
    store.add(model)
    return model
