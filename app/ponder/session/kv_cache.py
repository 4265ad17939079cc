"""Chats' KV caches on disk, so a chat continued in a new process skips re-reading itself.

Without them ``ponder run -c`` (and a chat reopened in the UI) evaluates the whole
conversation again: a 1.5B distill prefills about 90 tokens/s on two cores, so a
3,000-token chat waited ~30 s for its first new token, every turn. After a reply the
session saves the cache of the prefix the next turn will share
(:class:`~ponder.session.loaded.LocalModel`); before a reply it restores the saved
state with the longest common prefix, and the engine evaluates only what follows
(docs/architecture.md#continued-chats).

One file per chat and key: ``<cache dir>/kv/<key>-<chat>.kvstate``, holding a magic
line, a JSON header (the key in full, the chat, the token count, the data's length and
CRC-32), the tokens (int32, little-endian) and llama.cpp's bytes for sequence 0. The
key is everything the numbers depend on: the model file (its real path, size, mtime,
inode, a digest of its first and last MiB, and the store's sha256 when it has one),
llama.cpp's build and the load parameters that shape the cache. A state is used only
when its key equals the live one in full and its checksum holds, and only the tokens
it shares with the new prompt are kept: a state made under anything else, or for
other tokens, is never used. A file that cannot be read is deleted; it is a cache.

A state is the conversation in another form, so files are 0600 in a 0700 folder,
written to a temporary name and renamed into place (a reader never sees half a file).
The total is capped (the ``kv_cache_mb`` setting; 0 turns saving off), least recently
used out first: a restore refreshes its file's time. States go with their chat
(``ponder chats rm``), with their model (``ponder rm``), and in a sweep after each
save, with chats deleted elsewhere (the chat UI) and models whose file is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import sys
import threading
import time
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ponder.engine import KVState
from ponder.paths import create_file, make_dirs

log = logging.getLogger("ponder.kv_cache")

MAGIC = b"PONDER-KV 1\n"
SUFFIX = ".kvstate"
FILE_MODE = 0o600
DIR_MODE = 0o700
SAMPLE_BYTES = 1 << 20  # of the model file's head and tail, for its identity
MAX_HEADER = 1 << 20
STALE_TMP_S = 3600.0  # a temporary file this old was left by a killed process
_HEAD = struct.Struct("<I")


def model_identity(path: Path, sha256: str | None = None) -> dict[str, object]:
    """Who the model file is: enough to tell a replaced or edited file from this one
    without hashing gigabytes (the store's sha256 is added when it has one)."""
    real = path.resolve()
    info = real.stat()
    digest = hashlib.sha256()
    with real.open("rb") as f:
        digest.update(f.read(SAMPLE_BYTES))
        if info.st_size > 2 * SAMPLE_BYTES:
            f.seek(-SAMPLE_BYTES, os.SEEK_END)
        digest.update(f.read(SAMPLE_BYTES))
    return {
        "path": str(real),
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "inode": [info.st_dev, info.st_ino],
        "sample_sha256": digest.hexdigest(),
        "sha256": sha256,
    }


@dataclass(frozen=True, slots=True)
class StateKey:
    """What a state was made under: the model file and the engine (build, parameters)."""

    model: dict[str, object]
    engine: dict[str, object]

    def as_json(self) -> dict[str, object]:
        return {"model": self.model, "engine": self.engine}

    @property
    def digest(self) -> str:
        text = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class SavedState:
    """A state's header and tokens, read without its data."""

    path: Path
    chat_id: int
    tokens: tuple[int, ...]
    data_offset: int
    data_len: int
    crc: int
    stamp: tuple[int, int, int]  # inode, size, mtime when the header was read


class KVCache:
    """The folder of saved states; safe to use from several threads and processes."""

    def __init__(self, root: Path, cap_bytes: int) -> None:
        self.root = root
        self.cap_bytes = cap_bytes
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.cap_bytes > 0

    # -- finding and reading -------------------------------------------------------

    def best(
        self, key: StateKey, prompt: Sequence[int], *, better_than: int = 0
    ) -> tuple[SavedState, int] | None:
        """The state under ``key`` sharing the longest prefix with ``prompt`` (and the
        length of that prefix), if it shares more than ``better_than`` tokens."""
        found: tuple[SavedState, int] | None = None
        for path in self._files(f"{key.digest}-*{SUFFIX}"):
            saved = self._header(path, key)
            if saved is None:
                continue
            shared = common_prefix(saved.tokens, prompt)
            if shared > better_than and (found is None or shared > found[1]):
                found = (saved, shared)
        return found

    def read(self, saved: SavedState) -> KVState | None:
        """The state's data, checked against its checksum; None (and the file gone) when
        it does not hold."""
        try:
            with saved.path.open("rb") as f:
                if _stamp(os.fstat(f.fileno())) != saved.stamp:
                    return None  # replaced since its header was read: look again next time
                f.seek(saved.data_offset)
                data = bytearray(saved.data_len)
                got = f.readinto(data)
        except OSError:
            return None
        if got != saved.data_len or zlib.crc32(data, _tokens_crc(saved.tokens)) != saved.crc:
            log.debug("dropping %s: it does not match its checksum", saved.path.name)
            _unlink(saved.path)
            return None
        with contextlib.suppress(OSError):
            os.utime(saved.path)  # recently used: last out
        return KVState(saved.tokens, data)

    # -- writing -------------------------------------------------------------------

    def write(self, chat_id: int, key: StateKey, state: KVState) -> Path | None:
        """Save ``state`` as chat ``chat_id``'s latest under ``key`` (replacing the one
        before), then keep the folder under its cap. None when it is not kept."""
        size = state.nbytes
        if not self.enabled or size > self.cap_bytes:
            return None
        tokens = _token_bytes(state.tokens)
        header = {
            "key": key.as_json(),
            "chat_id": chat_id,
            "n_tokens": len(state.tokens),
            "data_len": size,
            "crc32": zlib.crc32(state.data, zlib.crc32(tokens)),
            "created": time.time(),
        }
        head = json.dumps(header, sort_keys=True).encode()
        final = self.root / f"{key.digest}-{chat_id}{SUFFIX}"
        tmp = self.root / f".{final.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        with self._lock:
            make_dirs(self.root, DIR_MODE)
            fd = create_file(tmp, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(MAGIC + _HEAD.pack(len(head)) + head)
                    f.write(tokens)
                    f.write(state.data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, final)
            except BaseException:
                _unlink(tmp)
                raise
            self._evict(keep=final)
        return final

    def _evict(self, keep: Path) -> None:
        """Oldest first out until the folder is under its cap (``keep`` stays)."""
        files = []
        for path in self._files(f"*{SUFFIX}"):
            try:
                info = path.stat()
            except OSError:
                continue
            files.append((info.st_mtime, path, info.st_size))
        total = sum(size for _, _, size in files)
        for _, path, size in sorted(files):
            if total <= self.cap_bytes:
                break
            if path != keep:
                _unlink(path)
                total -= size

    # -- forgetting ------------------------------------------------------------------

    def forget_chat(self, chat_id: int) -> int:
        """Delete chat ``chat_id``'s states, under any key; how many."""
        return sum(_unlink(p) for p in self._files(f"*-{chat_id}{SUFFIX}"))

    def forget_model(self, files: Iterable[Path]) -> int:
        """Delete the states made from any of ``files`` (a model being removed)."""
        paths = {str(p.resolve()) for p in files}
        gone = 0
        for path in self._files(f"*{SUFFIX}"):
            model = self._model_of(path)
            if model is not None and model.get("path") in paths:
                gone += _unlink(path)
        return gone

    def sweep(self, live_chats: set[int] | None, listed_at: float) -> int:
        """Delete states of chats that are gone (not in ``live_chats``, a list taken at
        ``listed_at``; a state written since is another process's new chat), of model
        files that are gone or have changed (their states can never be used again), and
        temporary files a killed process left."""
        gone = 0
        now = time.time()
        for path in self._files(".*.tmp"):
            try:
                if now - path.stat().st_mtime > STALE_TMP_S:
                    gone += _unlink(path)
            except OSError:
                continue
        for path in self._files(f"*{SUFFIX}"):
            chat = _chat_of(path)
            try:
                old = path.stat().st_mtime < listed_at
            except OSError:
                continue
            if live_chats is not None and old and chat is not None and chat not in live_chats:
                gone += _unlink(path)
                continue
            model = self._model_of(path)
            if model is not None and not _still_there(model):
                gone += _unlink(path)
        return gone

    # -- the files -------------------------------------------------------------------

    def _files(self, pattern: str) -> list[Path]:
        try:
            return sorted(self.root.glob(pattern))
        except OSError:
            return []

    def _read_header(self, path: Path) -> tuple[dict[str, object], int] | None:
        """The JSON header and where the tokens start; None (and the file deleted) when
        the file is not a state this Ponder wrote."""
        try:
            with path.open("rb") as f:
                return _parse_header(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, UnicodeDecodeError):
            log.debug("dropping %s: not a state file Ponder can read", path.name)
            _unlink(path)
            return None

    def _model_of(self, path: Path) -> dict[str, object] | None:
        read = self._read_header(path)
        if read is None:
            return None
        key = read[0].get("key")
        model = key.get("model") if isinstance(key, dict) else None
        return model if isinstance(model, dict) else None

    def _header(self, path: Path, key: StateKey) -> SavedState | None:
        try:
            with path.open("rb") as f:
                header, offset = _parse_header(f)
                if header.get("key") != json.loads(json.dumps(key.as_json())):
                    return None  # another model, build or parameters: never used
                n, chat_id = _int(header, "n_tokens"), _int(header, "chat_id")
                data_len, crc = _int(header, "data_len"), _int(header, "crc32")
                raw = f.read(4 * n)
                stamp = _stamp(os.fstat(f.fileno()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, UnicodeDecodeError):
            log.debug("dropping %s: not a state file Ponder can read", path.name)
            _unlink(path)
            return None
        if len(raw) != 4 * n or n <= 0:
            return None
        return SavedState(path, chat_id, _tokens_of(raw), offset + 4 * n, data_len, crc, stamp)


def _parse_header(f: BinaryIO) -> tuple[dict[str, object], int]:
    start = f.read(len(MAGIC) + _HEAD.size)
    if len(start) != len(MAGIC) + _HEAD.size or not start.startswith(MAGIC):
        raise ValueError("not a state file")
    (length,) = _HEAD.unpack(start[len(MAGIC) :])
    if length > MAX_HEADER:
        raise ValueError("header too long")
    header = json.loads(f.read(length))
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return header, len(start) + length


def _stamp(info: os.stat_result) -> tuple[int, int, int]:
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens ``a`` and ``b`` share from the start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _int(header: dict[str, object], name: str) -> int:
    value = header.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} is not a count")
    return value


def _token_bytes(tokens: Sequence[int]) -> bytes:
    arr = array("i", tokens)
    if arr.itemsize != 4:  # pragma: no cover - every platform Ponder runs on
        raise OSError("int is not 32 bits here")
    if sys.byteorder == "big":  # pragma: no cover
        arr.byteswap()
    return arr.tobytes()


def _tokens_of(raw: bytes) -> tuple[int, ...]:
    arr = array("i")
    arr.frombytes(raw)
    if sys.byteorder == "big":  # pragma: no cover
        arr.byteswap()
    return tuple(arr)


def _tokens_crc(tokens: Sequence[int]) -> int:
    return zlib.crc32(_token_bytes(tokens))


def _still_there(model: dict[str, object]) -> bool:
    """Whether the model file a state was made from is still there, unchanged."""
    try:
        info = Path(str(model.get("path"))).stat()
    except OSError:
        return False
    return info.st_size == model.get("size") and info.st_mtime_ns == model.get("mtime_ns")


def _chat_of(path: Path) -> int | None:
    tail = path.name.removesuffix(SUFFIX).rpartition("-")[2]
    return int(tail) if tail.isdigit() else None


def _unlink(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except OSError:
        return 0
