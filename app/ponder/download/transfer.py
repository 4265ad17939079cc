"""The resumable HTTP byte transfer, written by hand (see the package docstring)."""

from __future__ import annotations

import hashlib
import http.client
import os
import queue
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ponder.download.errors import AccessError, DownloadError, gb, short
from ponder.download.hub import RemoteFile
from ponder.errors import Interrupted
from ponder.events import DownloadProgress
from ponder.paths import create_file, make_dirs

CHUNK = 1024 * 1024

ProgressFn = Callable[[DownloadProgress], None]


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    stall_s: float = 30.0  # no byte for this long: reconnect
    retries: int = 5  # consecutive failed attempts before giving up
    backoff_s: float = 1.0  # doubled per failure, capped at 30 s
    # Fewer than slow_bytes in slow_window_s counts as a stall too: a server that
    # trickles a byte now and then never trips the per-read timeout above.
    slow_window_s: float = 30.0
    slow_bytes: int = 8 * 1024


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
    make_dirs(partial.parent)
    if partial.exists() and partial.stat().st_size > remote.size:
        partial.unlink()
    hasher = _Digest()
    fd = create_file(partial, os.O_RDWR | os.O_APPEND)
    with os.fdopen(fd, "ab+") as out:
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
                    f"The partial file is kept ({gb(done)} of {gb(remote.size)})",
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
        pace = _Pace(policy, remote.size - offset)
        while offset < remote.size:
            buffer = pipeline.take()
            try:
                n = _receive(response, buffer, remote.size - offset)
            except TimeoutError:
                pipeline.recycle(buffer)
                raise _Retry(f"no data for {policy.stall_s:g} s (stalled)") from None
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                pipeline.recycle(buffer)
                raise _Retry(f"the connection broke ({short(exc)})") from None
            if not n:
                pipeline.recycle(buffer)
                raise _Retry("the connection closed early")
            out.write(memoryview(buffer)[:n])
            pipeline.give(buffer, n)
            offset += n
            meter.add(n)
            pace.add(n, remote.size - offset)
            if cancel is not None and cancel.is_set():
                pipeline.drain()
                raise _stopped(remote)
        return offset
    finally:
        conn.close()


class _Pace:
    """Judges progress over a window: too few bytes in ``slow_window_s`` is a stall."""

    def __init__(self, policy: TransferPolicy, left: int) -> None:
        self._window, self._least = policy.slow_window_s, policy.slow_bytes
        self._start, self._bytes, self._left = time.monotonic(), 0, left

    def add(self, n: int, left: int) -> None:
        self._bytes += n
        now = time.monotonic()
        if now - self._start < self._window:
            return
        if self._bytes < min(self._least, self._left):
            raise _Retry(
                f"only {self._bytes:,} bytes in {now - self._start:.0f} s (the server trickles)"
            )
        self._start, self._bytes, self._left = now, 0, left


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
            raise _Retry(f"cannot connect ({short(exc)})") from None
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
