"""One pull, start to finish: checks, locks, the transfer, and the install into the store.

Before the first byte, every file's destination is checked to lie inside the store
(whatever named it), and every file must have a sha256 to be checked against: the
Hub's (``X-Linked-Etag``, an LFS file's) or the catalog's. A file with neither (a plain
git file, a mirror or a proxy that drops the header) is refused unless the caller
allows it; the model is then recorded as unverified, and listed so.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from ponder.download.errors import (
    DiskSpaceError,
    DownloadError,
    HashMismatchError,
    UnverifiedError,
    gb,
)
from ponder.download.hub import Hub, RemoteFile
from ponder.download.pending import forget_pending, partial_path, remember_pending
from ponder.download.refs import PullPlan
from ponder.download.transfer import ProgressFn, TransferPolicy, transfer
from ponder.errors import Interrupted
from ponder.paths import inside, make_dirs, repo_id_problem, repo_path_problem
from ponder.store import LOCK_MODE, InstalledModel, Store, StoredFile, now_iso, sha256_file

DISK_MARGIN = 64 * 1024 * 1024

NoticeFn = Callable[[str], None]


def pull(
    plan: PullPlan,
    store: Store,
    *,
    hub: Hub,
    policy: TransferPolicy | None = None,
    progress: ProgressFn | None = None,
    notice: NoticeFn | None = None,
    cancel: threading.Event | None = None,
    allow_unverified: bool = False,
) -> InstalledModel:
    """Fetch, verify and install every file of ``plan``; resumable at any point.

    ``allow_unverified`` takes files that nothing can be checked against (no sha256
    from the Hub or the catalog); the model is then marked unverified.
    """
    policy = policy or TransferPolicy()
    dests = [_destination(store, remote) for remote in plan.files]
    unverified = _check_verifiable(plan, allow_unverified)
    partial_dir = store.partial_dir()
    make_dirs(partial_dir)
    _check_expected_hashes(plan)
    _check_disk(plan, store, partial_dir)
    remember_pending(store, plan)
    stored: list[StoredFile] = []
    for remote, expected, dest in zip(plan.files, plan.expected_sha256, dests, strict=True):
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
        unverified=unverified,
    )
    store.add(model)
    forget_pending(store, plan.name)
    return model


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
    partial = partial_path(store, remote, expected)
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
        make_dirs(dest.parent)
        os.replace(partial, dest)
        _fsync_dir(dest.parent)
        return StoredFile(remote.path, local, remote.size, digest)


def _destination(store: Store, remote: RemoteFile) -> Path:
    """Where ``remote`` is installed: ``<store>/<repo>/<path>``, which must lie inside the
    store however the names came (a ref, a listing, a catalog, a plan built by hand)."""
    problem = repo_id_problem(remote.repo) or repo_path_problem(remote.path)
    dest = store.root / remote.repo / remote.path
    if problem is None and not inside(store.root, dest):
        problem = "a folder on the way leads out of it"
    if problem is not None:
        raise DownloadError(
            f"{remote.repo}/{remote.path[:120]} would be written outside the model store "
            f"({problem}); nothing was written",
            hint="check the reference, the catalog entry and HF_ENDPOINT",
        )
    return dest


def _check_verifiable(plan: PullPlan, allow_unverified: bool) -> bool:
    """Whether some file has no sha256 to check it against; refused unless allowed."""
    unchecked = [
        remote.path
        for remote, expected in zip(plan.files, plan.expected_sha256, strict=True)
        if not (remote.sha256 or expected)
    ]
    if unchecked and not allow_unverified:
        raise UnverifiedError(
            f"{plan.name}: the Hub gives no sha256 for {', '.join(unchecked)} (its ETag is "
            "not one: a plain git file, or a mirror or proxy), so the download cannot be "
            "verified; nothing was downloaded",
            hint=f"`ponder pull --allow-unverified {plan.name}` takes it anyway, marked unverified",
        )
    return bool(unchecked)


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
        dest = _destination(store, remote)
        if dest.is_file() and dest.stat().st_size == remote.size:
            continue
        partial = partial_path(store, remote, expected)  # where the pull resumes from
        have = partial.stat().st_size if partial.exists() else 0
        need += max(remote.size - have, 0)
    free = shutil.disk_usage(partial_dir).free
    if need + DISK_MARGIN > free:
        raise DiskSpaceError(
            f"not enough disk space for {plan.name}: need {gb(need)}, "
            f"{gb(free)} free in {store.root}",
            hint="free some space, or set PONDER_MODELS_DIR to a bigger disk",
        )


class _file_lock:
    """One pull per file: a second process waits (and says so) until the first is done."""

    def __init__(
        self, path: Path, label: str, notice: NoticeFn | None, cancel: threading.Event | None
    ) -> None:
        self._lock = FileLock(str(path), mode=LOCK_MODE)
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
