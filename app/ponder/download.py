"""Downloads from the Hugging Face Hub: the only module that imports huggingface_hub.

The hub library does what it is good at: URLs, the user's token (``HF_TOKEN`` or
``hf auth login``), metadata (resolved commit, size, the LFS sha256) and its error
types. The byte transfer is written here by hand, because huggingface_hub >= 1.18
no longer resumes after a restart (DESIGN.md measured 2.4.0 starting again from
byte 0). Ours writes into ``<models>/.partial/<sha256>.part``, which survives a
crash, a kill or Ctrl-C, and continues with an HTTP Range request. A read that sees
no byte for ``stall_s`` reconnects with backoff, a bounded number of times. The
finished bytes are hashed as they arrive and compared with the Hub's sha256 (and
the catalog's, when it has one) before an atomic rename into the store, so a
half-written or wrong file is never listed or loaded.

Redirects are followed by hand so the ``Authorization`` header is never sent to
another host (the Hub redirects file downloads to a CDN).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import queue
import re
import shutil
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from filelock import FileLock, Timeout

from ponder import __version__
from ponder.errors import ExitCode, Interrupted, ModelNotFoundError, PonderError
from ponder.events import DownloadProgress
from ponder.store import (
    InstalledModel,
    Store,
    StoredFile,
    now_iso,
    sha256_file,
    write_text_atomic,
)

SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
DISK_MARGIN = 64 * 1024 * 1024
CHUNK = 1024 * 1024

ProgressFn = Callable[[DownloadProgress], None]
NoticeFn = Callable[[str], None]


class DownloadError(PonderError):
    exit_code = ExitCode.ERROR


class AccessError(DownloadError):
    """401/403: a gated or private repo, or a missing or wrong token."""


class HashMismatchError(DownloadError):
    pass


class DiskSpaceError(DownloadError):
    pass


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    stall_s: float = 30.0  # no byte for this long: reconnect
    retries: int = 5  # consecutive failed attempts before giving up
    backoff_s: float = 1.0  # doubled per failure, capped at 30 s


@dataclass(frozen=True, slots=True)
class RemoteFile:
    repo: str
    path: str
    revision: str
    commit: str | None
    size: int
    sha256: str | None
    url: str  # pinned to the resolved commit when the Hub gave one


@dataclass(frozen=True, slots=True)
class RepoEntry:
    path: str
    size: int
    sha256: str | None


@dataclass(frozen=True, slots=True)
class PullPlan:
    """What one `ponder pull` will fetch, resolved before the first byte."""

    name: str
    repo: str
    revision: str
    files: tuple[RemoteFile, ...]
    expected_sha256: tuple[str | None, ...]  # the catalog's hashes, per file
    catalog_id: str | None = None
    quant: str | None = None

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


class Hub:
    """Metadata lookups against the Hub (or ``HF_ENDPOINT``, e.g. a test server)."""

    def __init__(self, endpoint: str | None = None, token: str | None = None) -> None:
        default = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        self.endpoint = (endpoint or default).rstrip("/")
        self._token = token  # None: huggingface_hub finds the user's token itself

    def headers(self) -> dict[str, str]:
        from huggingface_hub.utils._headers import build_hf_headers

        headers: dict[str, str] = build_hf_headers(
            token=self._token, library_name="ponder", library_version=__version__
        )
        return headers

    def file(self, repo: str, path: str, revision: str = "main") -> RemoteFile:
        """Resolve one file: commit, size and sha256, with a HEAD request."""
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        _refuse_offline(f"{repo}/{path}")
        url = hf_hub_url(repo, path, revision=revision, endpoint=self.endpoint)
        try:
            meta = get_hf_file_metadata(url, token=self._token, endpoint=self.endpoint)
        except Exception as exc:
            raise self._translate(exc, repo, path, revision) from None
        etag = (meta.etag or "").strip('"').lower()
        commit = meta.commit_hash
        return RemoteFile(
            repo=repo,
            path=path,
            revision=revision,
            commit=commit,
            size=int(meta.size or 0),
            sha256=etag if SHA256_HEX.match(etag) else None,
            url=hf_hub_url(repo, path, revision=commit or revision, endpoint=self.endpoint),
        )

    def gguf_files(self, repo: str, revision: str = "main") -> list[RepoEntry]:
        from huggingface_hub import HfApi
        from huggingface_hub.hf_api import RepoFile

        _refuse_offline(repo)
        api = HfApi(endpoint=self.endpoint, token=self._token)
        try:
            tree = list(api.list_repo_tree(repo, recursive=True, revision=revision))
        except Exception as exc:
            raise self._translate(exc, repo, None, revision) from None
        return [
            RepoEntry(item.path, int(item.size or 0), item.lfs.sha256 if item.lfs else None)
            for item in tree
            if isinstance(item, RepoFile) and item.path.lower().endswith(".gguf")
        ]

    def _translate(self, exc: Exception, repo: str, path: str | None, revision: str) -> Exception:
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            OfflineModeIsEnabled,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        page = f"{self.endpoint}/{repo}"
        if isinstance(exc, GatedRepoError):
            return AccessError(
                f"{repo} is gated: you must accept its licence before downloading",
                hint=f"accept it at {page}, then log in with `hf auth login` or set HF_TOKEN",
            )
        if isinstance(exc, RepositoryNotFoundError):
            return ModelNotFoundError(
                f"repository {repo} was not found on the Hub (or it is private)",
                hint="check the name; for a private repo log in with `hf auth login`",
            )
        if isinstance(exc, RevisionNotFoundError):
            return ModelNotFoundError(f"{repo} has no revision '{revision}'")
        if isinstance(exc, EntryNotFoundError) and path is not None:
            return ModelNotFoundError(
                f"{repo} has no file {path}", hint=self._suggest(repo, path, revision)
            )
        if isinstance(exc, OfflineModeIsEnabled):
            return DownloadError(f"cannot fetch {repo}: HF_HUB_OFFLINE is set")
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(exc, HfHubHTTPError) and status in (401, 403):
            return AccessError(
                f"the Hub refused access to {repo} ({status})",
                hint="log in with `hf auth login` or set HF_TOKEN",
            )
        return DownloadError(
            f"cannot reach the Hub for {repo}: {_short(exc)}",
            hint="check your connection, or set HF_HUB_OFFLINE=1 to use installed models only",
        )

    def _suggest(self, repo: str, path: str, revision: str) -> str:
        try:
            names = [entry.path for entry in self.gguf_files(repo, revision)]
        except PonderError:
            return "list the repo's files on the Hub"
        close = get_close_matches(path, names, n=3, cutoff=0.4)
        if close:
            return "did you mean " + ", ".join(close)
        return "the repo's GGUF files: " + (", ".join(names[:8]) or "none")


# -- planning a pull ---------------------------------------------------------------


def plan_files(
    hub: Hub,
    *,
    name: str,
    repo: str,
    revision: str,
    paths: Sequence[str],
    expected_sha256: Sequence[str | None] = (),
    catalog_id: str | None = None,
    quant: str | None = None,
) -> PullPlan:
    remote = [hub.file(repo, path, revision) for path in paths]
    # Every shard from the commit the first one resolved to, so they belong together.
    commit = remote[0].commit
    if commit:
        remote = [f if f.commit == commit else hub.file(repo, f.path, commit) for f in remote]
    expected = tuple(expected_sha256) or (None,) * len(remote)
    return PullPlan(name, repo, revision, tuple(remote), expected, catalog_id, quant)


def parse_hf_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``hf:owner/repo[:QUANT]`` or ``hf:owner/repo/path/file.gguf`` → (repo, quant, path)."""
    body = ref[3:] if ref.lower().startswith("hf:") else ref
    body, _, quant = body.partition(":")
    parts = [p for p in body.split("/") if p]
    if (
        len(parts) < 2
        or (quant and len(parts) > 2)
        or (len(parts) > 2 and not body.endswith(".gguf"))
    ):
        raise ModelNotFoundError(
            f"'{ref}' is not a Hub reference",
            hint="write hf:OWNER/REPO:QUANT or hf:OWNER/REPO/path/file.gguf",
        )
    path = "/".join(parts[2:]) or None
    return "/".join(parts[:2]), (quant.upper() or None), path


def hf_name(ref: str, default_quant: str = "Q4_K_M") -> str:
    """The store name a Hub reference installs under (no network needed)."""
    repo, quant, path = parse_hf_ref(ref)
    return f"hf:{repo}/{path}" if path else f"hf:{repo}:{quant or default_quant}"


def plan_hf(hub: Hub, ref: str, default_quant: str = "Q4_K_M") -> PullPlan:
    repo, quant, path = parse_hf_ref(ref)
    if path is not None:
        # A shard's name gives the others' (-00001-of-00003); no need to list the repo.
        paths = _with_shards(path) if SHARD.search(path) else [path]
        return plan_files(hub, name=hf_name(ref), repo=repo, revision="main", paths=paths)
    chosen = quant or default_quant
    paths = pick_quant([e.path for e in hub.gguf_files(repo)], chosen, repo)
    return plan_files(
        hub, name=hf_name(ref, chosen), repo=repo, revision="main", paths=paths, quant=chosen
    )


def pick_quant(paths: Sequence[str], quant: str, repo: str) -> list[str]:
    """The file (or shard set) of ``quant`` among a repo's GGUF paths."""
    pattern = re.compile(rf"(^|[-_./]){re.escape(quant)}([-_./]|$)", re.IGNORECASE)
    matches = sorted(p for p in paths if pattern.search(PurePosixPath(p).name))
    groups: dict[str, list[str]] = {}
    for path in matches:
        groups.setdefault(SHARD.sub("", path), []).append(path)
    if len(groups) == 1:
        return next(iter(groups.values()))
    if not groups:
        quants = sorted({_quant_of(p) for p in paths} - {""})
        raise ModelNotFoundError(
            f"{repo} has no {quant} GGUF",
            hint="available: " + (", ".join(quants) if quants else "no GGUF files"),
        )
    raise ModelNotFoundError(
        f"{repo} has several {quant} files: {', '.join(sorted(groups))}",
        hint=f"name one: hf:{repo}/PATH",
    )


def _quant_of(path: str) -> str:
    found = re.search(r"((?:I?Q\d\w*?)|F16|BF16|F32)(?:-\d{5}-of-\d{5})?\.gguf$", path, re.I)
    return found.group(1).upper() if found else ""


def _with_shards(first: str) -> list[str]:
    match = SHARD.search(first)
    assert match is not None
    total = int(match.group(2))
    prefix = first[: match.start()]
    return [f"{prefix}-{i:05d}-of-{total:05d}.gguf" for i in range(1, total + 1)]


# -- pulling -----------------------------------------------------------------------


def pull(
    plan: PullPlan,
    store: Store,
    *,
    hub: Hub,
    policy: TransferPolicy | None = None,
    progress: ProgressFn | None = None,
    notice: NoticeFn | None = None,
    cancel: threading.Event | None = None,
) -> InstalledModel:
    """Fetch, verify and install every file of ``plan``; resumable at any point."""
    policy = policy or TransferPolicy()
    partial_dir = store.partial_dir()
    partial_dir.mkdir(parents=True, exist_ok=True)
    _check_expected_hashes(plan)
    _check_disk(plan, store, partial_dir)
    _remember_pending(store, plan)
    stored: list[StoredFile] = []
    for remote, expected in zip(plan.files, plan.expected_sha256, strict=True):
        dest = store.root / remote.repo / remote.path
        stored.append(
            _fetch_one(remote, expected, dest, store, hub, policy, progress, notice, cancel)
        )
    model = InstalledModel(
        name=plan.name,
        files=tuple(stored),
        catalog_id=plan.catalog_id,
        quant=plan.quant,
        repo=plan.repo,
        revision=plan.revision,
        commit=plan.files[0].commit,
        installed_at=now_iso(),
    )
    store.add(model)
    forget_pending(store, plan.name)
    return model


# -- pulls that have not finished ------------------------------------------------------

PENDING = "pending.json"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        data = _read_pending(store)
        entry = data.pop(name, None)
        if entry is not None and delete_parts:
            for part in entry["parts"]:
                (store.partial_dir() / part).unlink(missing_ok=True)
        _write_pending(store, data)


def _remember_pending(store: Store, plan: PullPlan) -> None:
    path = store.partial_dir() / PENDING
    parts = [
        _partial_path(store, remote, expected).name
        for remote, expected in zip(plan.files, plan.expected_sha256, strict=True)
    ]
    with FileLock(str(path) + ".lock"):
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


def _partial_path(store: Store, remote: RemoteFile, expected: str | None) -> Path:
    want = remote.sha256 or expected
    key = want or hashlib.sha256(remote.url.encode()).hexdigest()
    return store.partial_dir() / f"{key}.part"


def _fetch_one(
    remote: RemoteFile,
    expected: str | None,
    dest: Path,
    store: Store,
    hub: Hub,
    policy: TransferPolicy,
    progress: ProgressFn | None,
    notice: NoticeFn | None,
    cancel: threading.Event | None,
) -> StoredFile:
    local = str(dest.relative_to(store.root))
    want = remote.sha256 or expected
    partial = _partial_path(store, remote, expected)
    with _file_lock(partial.with_suffix(".lock"), remote.path, notice, cancel):
        # Already here (another pull finished it, or an earlier run): check, don't refetch.
        if want and _is_complete(dest, remote.size, want):
            return StoredFile(remote.path, local, remote.size, want)
        digest = transfer(
            remote, partial, headers=hub.headers(), policy=policy, progress=progress, cancel=cancel
        )
        for label, value in (("the Hub's", remote.sha256), ("the catalog's", expected)):
            if value and digest != value:
                partial.unlink(missing_ok=True)
                raise HashMismatchError(
                    f"{remote.path}: downloaded bytes have sha256 {digest}, "
                    f"but {label} is {value}; the bad file was deleted",
                    hint="run the command again; if it repeats, the upload may have changed",
                )
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, dest)
        _fsync_dir(dest.parent)
        return StoredFile(remote.path, local, remote.size, digest)


def _is_complete(dest: Path, size: int, sha256: str) -> bool:
    return dest.is_file() and dest.stat().st_size == size and sha256_file(dest) == sha256


def _check_expected_hashes(plan: PullPlan) -> None:
    """A catalog hash that disagrees with the Hub means the upload changed: say so first."""
    for remote, expected in zip(plan.files, plan.expected_sha256, strict=True):
        if expected and remote.sha256 and expected != remote.sha256:
            raise HashMismatchError(
                f"{remote.repo}/{remote.path} on the Hub (sha256 {remote.sha256[:12]}…) is not "
                f"the file the catalog names (sha256 {expected[:12]}…); nothing was downloaded",
                hint="the uploader replaced it; pull it as "
                f"hf:{remote.repo}/{remote.path} to take the new upload",
            )


def _check_disk(plan: PullPlan, store: Store, partial_dir: Path) -> None:
    need = 0
    for remote, expected in zip(plan.files, plan.expected_sha256, strict=True):
        dest = store.root / remote.repo / remote.path
        if dest.is_file() and dest.stat().st_size == remote.size:
            continue
        partial = _partial_path(store, remote, expected)  # where the pull resumes from
        have = partial.stat().st_size if partial.exists() else 0
        need += max(remote.size - have, 0)
    free = shutil.disk_usage(partial_dir).free
    if need + DISK_MARGIN > free:
        raise DiskSpaceError(
            f"not enough disk space for {plan.name}: need {_gb(need)}, "
            f"{_gb(free)} free in {store.root}",
            hint="free some space, or set PONDER_MODELS_DIR to a bigger disk",
        )


class _file_lock:
    """One pull per file: a second process waits (and says so) until the first is done."""

    def __init__(
        self, path: Path, label: str, notice: NoticeFn | None, cancel: threading.Event | None
    ) -> None:
        self._lock = FileLock(str(path))
        self._label, self._notice, self._cancel = label, notice, cancel

    def __enter__(self) -> None:
        try:
            self._lock.acquire(timeout=0)
            return
        except Timeout:
            if self._notice:
                self._notice(f"another ponder is downloading {self._label}; waiting for it")
        while True:
            if self._cancel is not None and self._cancel.is_set():
                raise Interrupted("stopped while waiting for another download")
            try:
                self._lock.acquire(timeout=0.5)
                return
            except Timeout:
                continue

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


# -- the byte transfer ---------------------------------------------------------------


class _Retry(Exception):
    """A failure worth another attempt (stall, cut, 5xx, 429)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


def transfer(
    remote: RemoteFile,
    partial: Path,
    *,
    headers: dict[str, str],
    policy: TransferPolicy,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """Bring ``partial`` up to ``remote.size`` bytes, resuming; return its sha256."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    if partial.exists() and partial.stat().st_size > remote.size:
        partial.unlink()
    hasher = _Digest()
    with partial.open("ab+") as out:
        out.seek(0)
        while block := out.read(CHUNK * 4):
            hasher.update(block)
        done = out.tell()
        meter = _Meter(remote.path, remote.size, done, progress)
        pipeline = _Hasher(out, hasher)
        try:
            done = _transfer_loop(remote, done, out, pipeline, headers, policy, meter, cancel)
        finally:
            pipeline.close()
        out.flush()
        os.fsync(out.fileno())
    meter.finish()
    return hasher.hexdigest()


def _transfer_loop(
    remote: RemoteFile,
    done: int,
    out: BinaryIO,
    pipeline: _Hasher,
    headers: dict[str, str],
    policy: TransferPolicy,
    meter: _Meter,
    cancel: threading.Event | None,
) -> int:
    """Request ranges until the file is whole; retry failures with backoff."""
    failures = 0
    while done < remote.size:
        if cancel is not None and cancel.is_set():
            raise _stopped(remote)
        try:
            done = _get_range(remote, done, out, pipeline, headers, policy, meter, cancel)
            failures = 0
        except _Retry as retry:
            failures += 1
            done = pipeline.drain()  # every byte received so far is good: keep it
            if failures > policy.retries:
                raise DownloadError(
                    f"{remote.path}: {retry}; gave up after {policy.retries} retries. "
                    f"The partial file is kept ({_gb(done)} of {_gb(remote.size)})",
                    hint="run the same command again to resume",
                ) from None
            _sleep(retry.wait or min(policy.backoff_s * 2 ** (failures - 1), 30.0), cancel)
    pipeline.drain()
    return done


def _get_range(
    remote: RemoteFile,
    offset: int,
    out: BinaryIO,
    pipeline: _Hasher,
    headers: dict[str, str],
    policy: TransferPolicy,
    meter: _Meter,
    cancel: threading.Event | None,
) -> int:
    response, conn = _open(remote.url, {**headers, "Range": f"bytes={offset}-"}, policy.stall_s)
    try:
        if response.status == 200 and offset > 0:
            # The server ignored the Range: start over rather than append twice.
            pipeline.restart()
            offset = 0
            meter.restart()
        elif response.status == 206:
            start = _content_range_start(response.getheader("Content-Range"))
            if start != offset:
                raise _Retry(f"the server resumed at byte {start}, not {offset}")
        elif response.status != 200:
            _raise_for_status(response, remote)
        while offset < remote.size:
            buffer = pipeline.take()
            try:
                n = _receive(response, buffer, remote.size - offset)
            except TimeoutError:
                pipeline.recycle(buffer)
                raise _Retry(f"no data for {policy.stall_s:g} s (stalled)") from None
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                pipeline.recycle(buffer)
                raise _Retry(f"the connection broke ({_short(exc)})") from None
            if not n:
                pipeline.recycle(buffer)
                raise _Retry("the connection closed early")
            out.write(memoryview(buffer)[:n])
            pipeline.give(buffer, n)
            offset += n
            meter.add(n)
            if cancel is not None and cancel.is_set():
                pipeline.drain()
                raise _stopped(remote)
        return offset
    finally:
        conn.close()


def _receive(response: http.client.HTTPResponse, buffer: bytearray, left: int) -> int:
    """Whatever has arrived, up to ``left`` bytes, into ``buffer`` (no allocation).

    ``readinto1`` on the response's buffered socket returns what one read gives,
    unlike ``HTTPResponse.readinto``, which waits to fill the whole buffer and would
    lose the bytes already received when the link stalls. A chunked response (no
    length) goes through ``read1``.
    """
    view = memoryview(buffer)[: min(len(buffer), left)]
    if response.chunked or response.fp is None:
        data = response.read1(len(view))
        view[: len(data)] = data
        return len(data)
    return int(response.fp.readinto1(view))


def _open(
    url: str, headers: dict[str, str], timeout: float
) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    """GET ``url``, following redirects; Authorization never leaves the first host."""
    first_host = urllib.parse.urlsplit(url).netloc
    for _ in range(6):
        parts = urllib.parse.urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.netloc, timeout=timeout)
        send = headers if parts.netloc == first_host else _without_auth(headers)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", target, headers=send)
            response = conn.getresponse()
        except TimeoutError:
            conn.close()
            raise _Retry(f"no answer for {timeout:g} s") from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            conn.close()
            raise _Retry(f"cannot connect ({_short(exc)})") from None
        if response.status in (301, 302, 303, 307, 308):
            location = response.getheader("Location") or ""
            response.read()
            conn.close()
            url = urllib.parse.urljoin(url, location)
            continue
        return response, conn
    raise DownloadError(f"too many redirects fetching {url}")


def _without_auth(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != "authorization"}


def _raise_for_status(response: http.client.HTTPResponse, remote: RemoteFile) -> None:
    status = response.status
    if status in (429, 500, 502, 503, 504):
        retry_after = response.getheader("Retry-After")
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        raise _Retry(f"the server answered {status}", wait)
    if status in (401, 403):
        raise AccessError(
            f"the Hub refused {remote.repo}/{remote.path} ({status})",
            hint="log in with `hf auth login` or set HF_TOKEN; accept the licence if it is gated",
        )
    if status == 416:
        raise _Retry("the server rejected the resume offset (416)")
    raise DownloadError(f"{remote.repo}/{remote.path}: the server answered {status}")


def _content_range_start(value: str | None) -> int:
    match = re.match(r"bytes (\d+)-", value or "")
    return int(match.group(1)) if match else -1


class _Hasher:
    """Hashes written chunks on a second thread.

    The receiving thread reads into a small pool of reused buffers and writes each
    one; this thread hashes it and hands the buffer back, so receiving, writing and
    hashing overlap (file writes and sha256 release the GIL). Fresh buffers would
    cost more than the hashing: measured here, ``read1`` (a new 1 MiB object per
    chunk) plus write took 1.83 s per GB against 0.69 s for ``readinto1`` into a
    reused buffer (curl: 1.35 s). A periodic fdatasync during the transfer was
    tried and dropped: it held up the writes more than it shortened the final fsync.
    """

    def __init__(self, out: BinaryIO, digest: _Digest, buffers: int = 8) -> None:
        self._out, self._digest = out, digest
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(buffers):
            self._free.put(bytearray(CHUNK))
        self._work: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ponder-sha256", daemon=True)
        self._thread.start()

    def take(self) -> bytearray:
        """A free buffer to receive into."""
        self._raise()
        return self._free.get()

    def give(self, buffer: bytearray, n: int) -> None:
        """``buffer[:n]`` is written: hash it, then recycle the buffer."""
        self._work.put((buffer, n))

    def recycle(self, buffer: bytearray) -> None:
        self._free.put(buffer)

    def drain(self) -> int:
        """Wait until every written chunk is hashed; the file's size then."""
        self._work.join()
        self._raise()
        return self._out.tell()

    def restart(self) -> None:
        self.drain()
        self._out.seek(0)
        self._out.truncate()
        self._digest.reset()

    def close(self) -> None:
        self._work.put(None)
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise DownloadError(f"cannot write the download: {self._error}") from self._error

    def _run(self) -> None:
        while True:
            item = self._work.get()
            try:
                if item is None:
                    return
                buffer, n = item
                self._digest.update(memoryview(buffer)[:n])
                self._free.put(buffer)
            except BaseException as exc:  # reported to the receiving thread
                self._error = exc
            finally:
                self._work.task_done()


class _Digest:
    """A sha256 that can start over (when a server ignores a Range request)."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, data: bytes | memoryview) -> None:
        self._h.update(data)

    def reset(self) -> None:
        self._h = hashlib.sha256()

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class _Meter:
    """Turns byte counts into DownloadProgress events, at most ten per second."""

    def __init__(self, name: str, total: int, done: int, sink: ProgressFn | None) -> None:
        self.name, self.total, self.done, self.sink = name, total, done, sink
        self._t0 = time.monotonic()
        self._base = done
        self._last = 0.0
        self._emit(force=True)

    def add(self, n: int) -> None:
        self.done += n
        self._emit()

    def restart(self) -> None:
        self.done = self._base = 0
        self._t0 = time.monotonic()
        self._emit(force=True)

    def finish(self) -> None:
        self._emit(force=True)

    def _emit(self, force: bool = False) -> None:
        if self.sink is None:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        elapsed = now - self._t0
        rate = (self.done - self._base) / elapsed if elapsed > 0 else 0.0
        self.sink(DownloadProgress(self.name, self.done, self.total, rate))


def _stopped(remote: RemoteFile) -> Interrupted:
    return Interrupted(f"download of {remote.path} stopped; the partial file is kept")


def _sleep(seconds: float, cancel: threading.Event | None) -> None:
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise Interrupted("download stopped; the partial file is kept")


def _refuse_offline(what: str) -> None:
    if offline():
        raise DownloadError(
            f"cannot fetch {what}: HF_HUB_OFFLINE is set",
            hint="unset HF_HUB_OFFLINE to download, or run an installed model",
        )


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
