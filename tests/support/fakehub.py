"""A fake Hugging Face Hub on 127.0.0.1: real HTTP, the real Hub's protocol, and faults on demand.

Tests must never reach huggingface.co, yet the download code has to be tested against what the
Hub really does: a ``HEAD /resolve`` answered by a 302 whose *headers* carry the metadata, a GET
that follows the redirect to a CDN serving the bytes with Range support, JSON listing APIs, and
errors signalled by ``X-Error-Code`` headers that huggingface_hub turns into typed exceptions.
No library plays that protocol with fault injection (stall, cut, wrong bytes, error statuses),
so this module is written by hand on ``http.server``.

Two listeners share one state: the Hub (``url``) and its "CDN" (``cdn_url``), on different
ports. They must be different origins: huggingface_hub 2.4.0 follows a HEAD redirect that stays
on the same origin (``utils/_http.py`` ``_httpx2_follow_hub_redirects_with_backoff``) and would
then read the metadata from the CDN's answer, which carries no ``X-Repo-Commit``.

Repos are models only (``owner/name``). Each ``add_file`` makes a new commit on its branch that
keeps the files already there, so old commits stay resolvable by their 40-hex id. A file is
stored in LFS unless it is a small text file (README.md, config.json, ...), as on the real Hub:
an LFS file's ETag is its sha256 (``X-Linked-Etag``) and its tree ``oid`` is the git sha1 of its
LFS pointer; a plain git file's ETag is its git blob sha1.

Access: a gated repo's files need ``Authorization: Bearer <require_token>`` (no token: 401,
other token: 403, both ``X-Error-Code: GatedRepo``); its metadata APIs stay public, as on the
Hub. A private repo answers like a missing one (401 without a token, 404 with one,
``RepoNotFound``). When ``require_token`` is set, every repo needs that token. The CDN checks no
token (its URLs stand for signed ones).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["FakeHub", "Fault", "RecordedRequest", "fake_hub_fixture"]

_CHUNK = 4 << 20  # body write size when not throttled
_LFS_THRESHOLD = 10 << 20  # the Hub stores every file of 10 MiB or more in LFS
_TEXT_SUFFIXES = frozenset(
    {".md", ".json", ".txt", ".py", ".yaml", ".yml", ".jinja", ".toml", ".cfg", ".gitattributes"}
)
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_RANGE_RE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")
_RANGE_START_RE = re.compile(r"\s*bytes\s*=\s*(\d+)\s*-")
_DATE = "2024-05-01T12:00:00.000Z"
_HTTP_DATE = "Wed, 01 May 2024 12:00:00 GMT"
_INVERT = bytes(255 - i for i in range(256))  # wrong_bytes: every byte XOR 0xFF


@dataclass
class RecordedRequest:
    """One request as the fake Hub received it (appended before it is answered)."""

    method: str
    path: str  # the raw path, without the query string
    headers: dict[str, str]  # keys lower-cased; look-ups ignore case
    range_start: int | None  # N from "Range: bytes=N-" or "bytes=N-M"
    query: str = ""
    file: str | None = None  # "owner/name/path" the request is about (resolve and CDN)
    status: int | None = None  # the status answered, once answered


@dataclass(frozen=True)
class Fault:
    """What to do to the next GET of a file's bytes (see ``FakeHub.fail``)."""

    kind: Literal["stall", "cut", "wrong_bytes", "status"]
    after_bytes: int = 0  # stall/cut: send this many body bytes first
    seconds: float = 0.0  # stall: then send nothing for this long, then close the connection
    status: int = 500  # status: answer this HTTP status instead


class _Headers(dict[str, str]):
    """A dict of headers whose keys are lower-case and whose look-ups ignore case."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass(frozen=True)
class _Blob:
    sha256: str
    size: int
    data: bytes | None  # in memory, or
    file: Path | None  # served from disk with sendfile


@dataclass(frozen=True)
class _Entry:
    path: str
    blob: _Blob
    lfs: bool
    git_oid: str  # git sha1 of the content, or of the LFS pointer for LFS files
    pointer_size: int


@dataclass
class _Repo:
    gated: bool = False
    private: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit
    commits: dict[str, dict[str, _Entry]] = field(default_factory=dict)  # commit -> files


class _Abort(Exception):
    """The hub is stopping: drop the connection."""


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _sha256_of(data: bytes | Path) -> str:
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with data.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _parse_range(value: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """(first, last) inclusive for a single byte range; None means ignore the header."""
    m = _RANGE_RE.fullmatch(value)
    if m is None:
        return None  # several ranges, other units, or garbage: serve the whole body
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


class FakeHub:
    """A threaded HTTP/1.1 stand-in for huggingface.co and its CDN, on 127.0.0.1.

    >>> with FakeHub() as hub:
    ...     sha = hub.add_file("acme/tiny-GGUF", "tiny-Q4_K_M.gguf", b"GGUF...")
    ...     # hf_hub_download("acme/tiny-GGUF", "tiny-Q4_K_M.gguf", endpoint=hub.url, ...)
    """

    def __init__(self, *, require_token: str | None = None) -> None:
        self.require_token = require_token
        self.url = ""
        self.cdn_url = ""
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._repos: dict[str, _Repo] = {}
        self._blobs: dict[str, _Blob] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._rate: int | None = None
        self._servers: list[_Server] = []
        self._serve_threads: list[threading.Thread] = []
        self._connections: dict[socket.socket, threading.Thread] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeHub:
        if self._servers:
            return self
        self._stopping.clear()
        for role in ("hub", "cdn"):
            server = _Server(("127.0.0.1", 0), _Handler)
            server.hub = self
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fakehub-{role}",
                daemon=True,
            )
            thread.start()
            self._servers.append(server)
            self._serve_threads.append(thread)
        hub_port = self._servers[0].server_address[1]
        cdn_port = self._servers[1].server_address[1]
        self.url = f"http://127.0.0.1:{hub_port}"
        self.cdn_url = f"http://127.0.0.1:{cdn_port}"
        return self

    def stop(self) -> None:
        """Stop both listeners and drop every open connection, stalled ones included."""
        if not self._servers:
            return
        self._stopping.set()  # wakes stalls and throttled sends
        closers = [threading.Thread(target=s.shutdown) for s in self._servers]
        for closer in closers:  # each waits up to one poll interval: wait for both at once
            closer.start()
        for closer in closers:
            closer.join()
        for server in self._servers:
            server.server_close()
        with self._lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # unblocks a handler waiting on a keep-alive read
        deadline = time.monotonic() + 1.5
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))
        for thread in self._serve_threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._servers.clear()
        self._serve_threads.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- content -----------------------------------------------------------------------------

    def add_repo(
        self,
        repo: str,
        *,
        gated: bool = False,
        private: bool = False,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Create an empty model repo (or update its flags); `info` is merged into model_info."""
        _check_repo_id(repo)
        with self._lock:
            entry = self._repos.get(repo)
            if entry is None:
                entry = self._repos[repo] = _Repo()
                commit = hashlib.sha1(f"{repo}\0initial".encode()).hexdigest()
                entry.commits[commit] = {}
                entry.branches["main"] = commit
            entry.gated = entry.gated or gated
            entry.private = entry.private or private
            if info:
                entry.info.update(info)

    def add_file(
        self,
        repo: str,
        path: str,
        data: bytes | Path,
        *,
        revision: str = "main",
        commit: str | None = None,
        gated: bool = False,
        lfs: bool | None = None,
        sha256: str | None = None,
        hostile: bool = False,
    ) -> str:
        """Commit `data` at `path` on branch `revision`; return its sha256 hex.

        `data` may be a Path to a big file, served from disk. `commit` names the new commit
        (40 hex; reusing one adds to it in place); by default one is derived. `lfs` forces or
        prevents LFS storage. `sha256` skips hashing a big file (and is trusted as given).
        `hostile` takes `path` as given (``..`` parts, a leading ``/``), as a hostile Hub
        would list and serve it: a resolve URL that an HTTP client normalised (httpx removes
        dot segments) still finds it.
        """
        if not hostile:
            path = path.strip("/")
            if not path or any(part in ("", ".", "..") for part in path.split("/")):
                raise ValueError(f"bad path in repo: {path!r}")
        if _COMMIT_RE.fullmatch(revision):
            raise ValueError("add_file takes a branch name as revision, not a commit id")
        if commit is not None and not _COMMIT_RE.fullmatch(commit):
            raise ValueError(f"commit must be 40 lower-case hex digits: {commit!r}")
        if isinstance(data, Path):
            size = data.stat().st_size
            blob_data, blob_file = None, data
        else:
            size = len(data)
            blob_data, blob_file = bytes(data), None
        digest = sha256 or _sha256_of(data)
        if lfs is None:
            name = PurePosixPath(path).name
            suffix = PurePosixPath(path).suffix.lower() or name
            lfs = not (size < _LFS_THRESHOLD and suffix in _TEXT_SUFFIXES)
        if lfs:
            pointer = (
                f"version https://git-lfs.github.com/spec/v1\noid sha256:{digest}\nsize {size}\n"
            ).encode()
            git_oid, pointer_size = _git_sha1(pointer), len(pointer)
        else:
            content = data.read_bytes() if isinstance(data, Path) else blob_data
            git_oid, pointer_size = _git_sha1(content or b""), 0
        blob = _Blob(digest, size, blob_data, blob_file)
        entry = _Entry(path, blob, lfs, git_oid, pointer_size)
        self.add_repo(repo, gated=gated)
        with self._lock:
            self._blobs.setdefault(digest, blob)
            state = self._repos[repo]
            if commit is not None and commit in state.commits:
                files = state.commits[commit]
            else:
                parent = state.branches.get(revision) or state.branches["main"]
                files = dict(state.commits[parent])
                if commit is None:
                    seed = f"{repo}\0{revision}\0{parent}\0{path}\0{digest}\0{len(state.commits)}"
                    commit = hashlib.sha1(seed.encode()).hexdigest()
                state.commits[commit] = files
            files[path] = entry
            state.branches[revision] = commit
        return digest

    def head(self, repo: str, revision: str = "main") -> str:
        """The commit id a branch points at."""
        with self._lock:
            return self._repos[repo].branches[revision]

    # -- behaviour ---------------------------------------------------------------------------

    def fail(self, path: str, fault: Fault, *, times: int = 1) -> None:
        """The next `times` GETs of the bytes of `path` ("owner/name/file") get `fault`.

        Faults queue up in the order given. HEAD requests and redirects never consume one.
        """
        with self._lock:
            self._faults.setdefault(path.strip("/"), []).extend([fault] * times)

    def throttle(self, bytes_per_s: int | None) -> None:
        """Pace every body (per response) at this rate; None lifts it. Applies mid-stream."""
        if bytes_per_s is not None and bytes_per_s <= 0:
            raise ValueError("bytes_per_s must be positive")
        self._rate = bytes_per_s

    # -- internals used by the handler -------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _take_fault(self, key: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(key)
            return queue.pop(0) if queue else None

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections[sock] = threading.current_thread()
            else:
                self._connections.pop(sock, None)


def fake_hub_fixture(*, require_token: str | None = None) -> Iterator[FakeHub]:
    """Start a FakeHub, yield it, and stop it: the body of the `fake_hub` fixture.

    In tests/conftest.py::

        @pytest.fixture()
        def fake_hub() -> Iterator[FakeHub]:
            hub = FakeHub()
            hub.start()
            yield hub
            hub.stop()

    or, equivalently, ``fake_hub = pytest.fixture(fake_hub_fixture)``.
    """
    hub = FakeHub(require_token=require_token).start()
    try:
        yield hub
    finally:
        hub.stop()


def _check_repo_id(repo: str) -> None:
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"repo id must be 'owner/name': {repo!r}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    hub: FakeHub

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log nothing: clients hang up mid-body on purpose in these tests."""


class _Response(Exception):
    """An error answer, raised from deep in a route."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _record: RecordedRequest
    _body: bytes

    # -- plumbing ----------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.hub._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.hub._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing to stderr."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        hub = self.server.hub
        split = urlsplit(self.path)
        headers = _Headers((k.lower(), v) for k, v in self.headers.items())
        m = _RANGE_START_RE.match(headers.get("range", ""))
        self._record = RecordedRequest(
            method=self.command,
            path=split.path,
            headers=headers,
            range_start=int(m.group(1)) if m else None,
            query=split.query,
        )
        hub._record(self._record)
        length = int(headers.get("content-length", "0") or 0)
        self._body = self.rfile.read(length) if length > 0 else b""
        try:
            self._route(split.path, parse_qs(split.query))
        except _Response as answer:
            self._send_error(answer)
        except (_Abort, OSError):
            self.close_connection = True

    def _start(self, status: int, headers: Mapping[str, str]) -> None:
        self._record.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_simple(self, status: int, headers: dict[str, str], body: bytes) -> None:
        headers = {**headers, "Content-Length": str(len(body))}
        self._start(status, headers)
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(self, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self._send_simple(200, {"Content-Type": "application/json; charset=utf-8"}, body)

    def _send_error(self, answer: _Response) -> None:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Error-Message": answer.message.encode("ascii", "backslashreplace").decode(),
            **answer.headers,
        }
        if answer.code:
            headers["X-Error-Code"] = answer.code
        self._send_simple(answer.status, headers, json.dumps({"error": answer.message}).encode())

    def _token(self) -> str | None:
        value = self._record.headers.get("authorization", "")
        if value.lower().startswith("bearer "):
            return value[7:].strip() or None
        return None

    # -- routing -----------------------------------------------------------------------------

    def _route(self, raw_path: str, query: dict[str, list[str]]) -> None:
        segs = raw_path.split("/")[1:]
        method = self.command
        if len(segs) == 2 and segs[0] == "cdn":
            self._only(method, "GET", "HEAD")
            self._cdn(segs[1], query)
        elif len(segs) >= 4 and segs[0] == "api" and segs[1] == "models":
            repo_id = f"{unquote(segs[2])}/{unquote(segs[3])}"
            rest = segs[4:]
            if not rest:
                self._only(method, "GET")
                self._model_info(repo_id, None, query)
            elif rest[0] == "revision" and len(rest) >= 2:
                self._only(method, "GET")
                self._model_info(repo_id, unquote("/".join(rest[1:])), query)
            elif rest[0] == "tree" and len(rest) >= 2:
                self._only(method, "GET")
                self._tree(repo_id, unquote(rest[1]), unquote("/".join(rest[2:])), query)
            elif rest[0] == "paths-info" and len(rest) >= 2:
                self._only(method, "POST")
                self._paths_info(repo_id, unquote("/".join(rest[1:])))
            else:
                raise _Response(404, "Not Found")
        elif len(segs) >= 5 and segs[2] == "resolve" and self._hostile(raw_path) is None:
            self._only(method, "GET", "HEAD")
            repo_id = f"{unquote(segs[0])}/{unquote(segs[1])}"
            self._resolve(repo_id, unquote(segs[3]), unquote("/".join(segs[4:])))
        elif (target := self._hostile(raw_path)) is not None:
            self._only(method, "GET", "HEAD")
            self._resolve(*target)
        else:
            raise _Response(404, "Not Found")

    def _hostile(self, raw_path: str) -> tuple[str, str, str] | None:
        """(repo, revision, path) of a hostile file whose resolve URL, with its dot
        segments removed, is ``raw_path``; None for every other path."""
        wanted = posixpath.normpath(unquote(raw_path))
        hub = self.server.hub
        with hub._lock:
            for repo_id, repo in hub._repos.items():
                for revision in [*repo.branches, *repo.commits]:
                    commit = repo.branches.get(revision, revision)
                    for path in repo.commits.get(commit, {}):
                        if not _plain(path) and (
                            posixpath.normpath(f"/{repo_id}/resolve/{revision}/{path}") == wanted
                        ):
                            return repo_id, revision, path
        return None

    @staticmethod
    def _only(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise _Response(405, "Method Not Allowed", headers={"Allow": ", ".join(allowed)})

    # -- repo state look-ups -----------------------------------------------------------------

    def _repo(self, repo_id: str, *, files: bool) -> _Repo:
        hub = self.server.hub
        token = self._token()
        with hub._lock:
            repo = hub._repos.get(repo_id)
        if repo is None:
            raise _Response(401 if token is None else 404, "Repository not found", "RepoNotFound")
        if hub.require_token is not None and token == hub.require_token:
            return repo
        if repo.gated and (files or hub.require_token is not None):
            if token is None:
                message = (
                    f"Access to model {repo_id} is restricted. You must have access to it and be "
                    "authenticated to access it. Please log in."
                )
                raise _Response(401, message, "GatedRepo")
            message = (
                f"Access to model {repo_id} is restricted and you are not in the authorized "
                f"list. Visit https://huggingface.co/{repo_id} to ask for access."
            )
            raise _Response(403, message, "GatedRepo")
        if repo.private or hub.require_token is not None:
            raise _Response(401 if token is None else 404, "Repository not found", "RepoNotFound")
        return repo

    def _commit(self, repo: _Repo, revision: str) -> tuple[str, dict[str, _Entry]]:
        with self.server.hub._lock:
            commit = repo.branches.get(revision)
            if commit is None and revision in repo.commits:
                commit = revision
            if commit is None:
                raise _Response(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            return commit, dict(repo.commits[commit])

    # -- /{repo}/resolve/{revision}/{path} -----------------------------------------------------

    def _resolve(self, repo_id: str, revision: str, path: str) -> None:
        hub = self.server.hub
        self._record.file = f"{repo_id}/{path}"
        repo = self._repo(repo_id, files=True)
        commit, files = self._commit(repo, revision)
        entry = files.get(path)
        if entry is None:
            raise _Response(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit})
        if not entry.lfs:  # plain git file: the Hub serves it itself
            headers = {
                "X-Repo-Commit": commit,
                "ETag": f'"{entry.git_oid}"',
                "Content-Type": "text/plain; charset=utf-8",
            }
            self._serve_blob(entry.blob, headers, f"{repo_id}/{path}")
            return
        sha = entry.blob.sha256
        location = (
            f"{hub.cdn_url}/cdn/{sha}?repo={quote(repo_id, safe='')}&path={quote(path, safe='')}"
            f"&commit={commit}&Expires={int(time.time()) + 3600}&Signature=fake&Key-Pair-Id=FAKE"
        )
        body = f"Found. Redirecting to {location}".encode()
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            "Location": location,
            "X-Repo-Commit": commit,
            "X-Linked-Etag": f'"{sha}"',
            "X-Linked-Size": str(entry.blob.size),
            # The redirect's own ETag is not the file's: clients must read X-Linked-Etag.
            "ETag": f'W/"{len(body):x}-{hashlib.sha1(body).hexdigest()[:27]}"',
            "Accept-Ranges": "bytes",
            "Vary": "Origin, Accept",
        }
        self._send_simple(302, headers, body)

    # -- /cdn/{sha256} -----------------------------------------------------------------------

    def _cdn(self, sha: str, query: dict[str, list[str]]) -> None:
        hub = self.server.hub
        with hub._lock:
            blob = hub._blobs.get(sha)
        if blob is None:
            raise _Response(404, "NoSuchKey")
        repo_id = query.get("repo", [""])[0]
        path = query.get("path", [""])[0]
        key = f"{repo_id}/{path}" if repo_id and path else None
        self._record.file = key
        name = PurePosixPath(path).name or sha
        headers = {
            "Content-Type": "binary/octet-stream",
            "Content-Disposition": (
                f"inline; filename*=UTF-8''{quote(name)}; filename=\"{quote(name)}\";"
            ),
            "Last-Modified": _HTTP_DATE,
            "Cache-Control": "public, max-age=604800, immutable",
            "ETag": f'"{sha}"',
        }
        self._serve_blob(blob, headers, key)

    # -- bytes -------------------------------------------------------------------------------

    def _serve_blob(self, blob: _Blob, headers: dict[str, str], key: str | None) -> None:
        hub = self.server.hub
        fault = hub._take_fault(key) if key and self.command == "GET" else None
        if fault is not None and fault.kind == "status":
            extra = {"Retry-After": "1"} if fault.status in (429, 503) else {}
            raise _Response(fault.status, f"Injected fault: status {fault.status}", None, extra)
        headers = {**headers, "Accept-Ranges": "bytes"}
        start, end = 0, blob.size  # end exclusive
        status = 200
        range_header = self._record.headers.get("range")
        if_range = self._record.headers.get("if-range")
        if range_header and (if_range is None or if_range.strip() == headers["ETag"]):
            wanted = _parse_range(range_header, blob.size)
            if wanted == "unsatisfiable":
                headers["Content-Range"] = f"bytes */{blob.size}"
                self._send_simple(416, headers, b"")
                return
            if wanted is not None:
                start, end = wanted[0], wanted[1] + 1
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        headers["Content-Length"] = str(end - start)
        self._start(status, headers)
        if self.command == "HEAD":
            return
        stop_at = end
        if fault is not None and fault.kind in ("stall", "cut"):
            stop_at = min(end, start + fault.after_bytes)
        self._send_range(
            blob, start, stop_at, invert=fault is not None and fault.kind == "wrong_bytes"
        )
        if fault is not None and fault.kind in ("stall", "cut"):
            if fault.kind == "stall":
                hub._stopping.wait(fault.seconds)
            self.close_connection = True  # the server then sends FIN, short of Content-Length

    def _send_range(self, blob: _Blob, start: int, end: int, *, invert: bool) -> None:
        hub = self.server.hub
        began = time.monotonic()
        pos = start
        view = memoryview(blob.data) if blob.data is not None else None
        file = blob.file.open("rb") if blob.file is not None else None
        try:
            while pos < end:
                if hub._stopping.is_set():
                    raise _Abort
                rate = hub._rate
                n = min(end - pos, _CHUNK if rate is None else max(1, min(_CHUNK, rate // 20)))
                if view is not None:
                    chunk = view[pos : pos + n]
                    self.wfile.write(chunk.tobytes().translate(_INVERT) if invert else chunk)
                elif invert:
                    assert file is not None
                    file.seek(pos)
                    self.wfile.write(file.read(n).translate(_INVERT))
                else:
                    assert file is not None
                    self.connection.sendfile(file, offset=pos, count=n)
                pos += n
                if rate is not None:
                    delay = began + (pos - start) / rate - time.monotonic()
                    if delay > 0 and hub._stopping.wait(delay):
                        raise _Abort
        finally:
            if file is not None:
                file.close()

    # -- /api/models/... ---------------------------------------------------------------------

    def _file_item(self, entry: _Entry, commit: str, expand: bool) -> dict[str, Any]:
        item: dict[str, Any] = {
            "type": "file",
            "oid": entry.git_oid,
            "size": entry.blob.size,
            "path": entry.path,
        }
        if entry.lfs:
            item["lfs"] = {
                "oid": entry.blob.sha256,
                "size": entry.blob.size,
                "pointerSize": entry.pointer_size,
            }
        if expand:
            item["lastCommit"] = {"id": commit, "title": f"Upload {entry.path}", "date": _DATE}
            item["securityFileStatus"] = {
                "status": "safe",
                "avScan": {"virusFound": False, "virusNames": None},
                "pickleImportScan": None,
            }
        return item

    @staticmethod
    def _dirs(files: Mapping[str, _Entry]) -> dict[str, str]:
        """Every folder path -> a tree oid derived from what it holds."""
        children: dict[str, list[str]] = {}
        for path, entry in files.items():
            parts = path.split("/")
            for i in range(1, len(parts)):
                children.setdefault("/".join(parts[:i]), []).append(f"{path}:{entry.git_oid}")
        return {
            d: hashlib.sha1("\n".join(sorted(kids)).encode()).hexdigest()
            for d, kids in children.items()
        }

    def _dir_item(self, path: str, oid: str, commit: str, expand: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
        if expand:
            item["lastCommit"] = {"id": commit, "title": f"Upload {path}", "date": _DATE}
        return item

    def _tree(self, repo_id: str, revision: str, folder: str, query: dict[str, list[str]]) -> None:
        repo = self._repo(repo_id, files=False)
        commit, files = self._commit(repo, revision)
        folder = folder.strip("/")
        recursive = _flag(query, "recursive")
        expand = _flag(query, "expand")
        dirs = self._dirs(files)
        if folder and folder not in dirs:
            raise _Response(404, f'"{folder}" does not exist on "{revision}"', "EntryNotFound")
        prefix = f"{folder}/" if folder else ""

        def wanted(path: str) -> bool:
            if not path.startswith(prefix):
                return False
            return recursive or "/" not in path[len(prefix) :]

        items = [self._dir_item(d, oid, commit, expand) for d, oid in dirs.items() if wanted(d)] + [
            self._file_item(e, commit, expand) for p, e in files.items() if wanted(p)
        ]
        items.sort(key=lambda item: item["path"])
        self._send_json(items)

    def _paths_info(self, repo_id: str, revision: str) -> None:
        raw = self._body
        repo = self._repo(repo_id, files=False)
        commit, files = self._commit(repo, revision)
        if "json" in self._record.headers.get("content-type", ""):
            body = json.loads(raw or b"{}")
            paths, expand = list(body.get("paths", [])), bool(body.get("expand", False))
        else:
            form = parse_qs(raw.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), _flag(form, "expand")
        dirs = self._dirs(files)
        items: list[dict[str, Any]] = []
        for path in paths:
            path = path.strip("/")
            if path in files:
                items.append(self._file_item(files[path], commit, expand))
            elif path in dirs:
                items.append(self._dir_item(path, dirs[path], commit, expand))
        self._send_json(items)

    def _model_info(self, repo_id: str, revision: str | None, query: dict[str, list[str]]) -> None:
        repo = self._repo(repo_id, files=False)
        commit, files = self._commit(repo, revision or "main")
        blobs = _flag(query, "blobs")
        siblings: list[dict[str, Any]] = []
        for path in sorted(files):
            entry = files[path]
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling["blobId"] = entry.git_oid
                sibling["size"] = entry.blob.size
                if entry.lfs:
                    sibling["lfs"] = {
                        "sha256": entry.blob.sha256,
                        "size": entry.blob.size,
                        "pointerSize": entry.pointer_size,
                    }
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit,
            "lastModified": _DATE,
            "createdAt": _DATE,
            "private": repo.private,
            "gated": "auto" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": ["gguf"] if any(p.endswith(".gguf") for p in files) else [],
            "siblings": siblings,
            "usedStorage": sum(e.blob.size for e in files.values()),
        }
        info.update(repo.info)
        self._send_json(info)


def _plain(path: str) -> bool:
    return not path.startswith("/") and all(p not in ("", ".", "..") for p in path.split("/"))


def _flag(query: Mapping[str, list[str]], name: str) -> bool:
    values = query.get(name) or [""]
    return values[-1].lower() in ("1", "true", "yes")
