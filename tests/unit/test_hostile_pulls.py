"""Hostile input to a pull: names that climb out of the store, bytes no hash vouches for,
a server that trickles, a permissive umask, and removal outside the store.

Each case runs against the loopback fake Hub, which can list and serve hostile paths
(``add_file(hostile=True)``) as a hostile Hub would. Whatever the server or the user
gives, nothing is written (or deleted) outside the model store.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.catalog import parse_catalog
from ponder.download import (
    DownloadError,
    Hub,
    PullPlan,
    RemoteFile,
    TransferPolicy,
    forget_pending,
    plan_files,
    plan_hf,
    pull,
)
from ponder.errors import CatalogError, Interrupted, UsageError
from ponder.store import InstalledModel, Store, StoredFile, import_file
from support.fakehub import FakeHub

REPO = "acme/Tiny-R1-GGUF"
FAST = TransferPolicy(stall_s=0.5, retries=2, backoff_s=0.05)
DATA = b"GGUF" + bytes(range(256)) * 4000  # about 1 MB


@pytest.fixture()
def hub(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return fake_hub


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "home" / "data" / "models")


def _outside(tmp_path: Path, store: Store) -> list[Path]:
    """Every file under tmp_path that is not inside the store."""
    return [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.resolve().is_relative_to(store.root.resolve())
    ]


def _byte_gets(hub: FakeHub) -> list[str]:
    return [r.path for r in hub.requests if r.method == "GET" and r.path.startswith("/cdn")]


# -- 1. names that climb out of the store ------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        "hf:org/repo/../../../../../../../escape.gguf",
        "hf:org/repo/sub/../../../../../../../escape.gguf",
        "hf:org/repo/./escape.gguf",
        "hf:org/..",
        "hf:../repo",
        "hf:x/../y.gguf",
        "hf:org/re..po",
        "hf:org/repo/sub\\..\\..\\escape.gguf",
    ],
)
def test_a_ref_that_is_not_a_plain_repo_and_path_is_a_usage_error(hub: FakeHub, ref: str) -> None:
    hub.add_file("org/repo", "ok.gguf", DATA)
    with pytest.raises(UsageError):
        plan_hf(Hub(endpoint=hub.url), ref)
    assert hub.requests == []


def test_a_hub_that_serves_a_climbing_path_writes_nothing_outside(
    hub: FakeHub, store: Store, tmp_path: Path
) -> None:
    """Without the ref check, the Hub's answer alone must not place a file outside."""
    path = "../../../../../escape.gguf"  # from <store>/org/repo to tmp_path
    hub.add_file("org/repo", path, DATA, hostile=True)
    client = Hub(endpoint=hub.url)
    url = f"{hub.url}/org/repo/resolve/main/{path}"
    plan = PullPlan(
        name="x",
        repo="org/repo",
        revision="main",
        files=(RemoteFile("org/repo", path, "main", None, len(DATA), None, url),),
        expected_sha256=(None,),
    )
    with pytest.raises(DownloadError, match="outside"):
        pull(plan, store, hub=client, policy=FAST, allow_unverified=True)
    assert _outside(tmp_path, store) == []
    assert store.installed() == []


@pytest.mark.parametrize("listed", ["../../../../../escape-Q4_K_M.gguf", "/abs/escape-Q4_K_M.gguf"])
def test_a_listing_that_names_a_path_outside_the_repo_is_refused(
    hub: FakeHub, store: Store, tmp_path: Path, listed: str
) -> None:
    hub.add_file("org/repo", listed, DATA, hostile=True)
    client = Hub(endpoint=hub.url)
    with pytest.raises(DownloadError, match="not a plain path inside the repo") as info:
        pull(plan_hf(client, "hf:org/repo:Q4_K_M"), store, hub=client, policy=FAST)
    assert "\n" not in str(info.value)
    assert _byte_gets(hub) == []
    assert _outside(tmp_path, store) == []
    assert not (store.root / "org" / "repo" / listed).resolve().exists()


@pytest.mark.parametrize("repo", ["x/..", "x/.", "x/a..b", "x/-a", "x/a--b"])
def test_a_catalog_repo_the_hub_would_refuse_is_a_catalog_error(repo: str) -> None:
    text = f"""
[[model]]
id = "tiny"
name = "Tiny"
[[model.quant]]
quant = "Q4_K_M"
repo = "{repo}"
files = ["Tiny-Q4_K_M.gguf"]
size_bytes = 1000
"""
    with pytest.raises(CatalogError, match="repo"):
        parse_catalog(text, "models.toml")


def test_a_shard_count_of_zero_is_a_usage_error(hub: FakeHub) -> None:
    with pytest.raises(UsageError, match="shard"):
        plan_hf(Hub(endpoint=hub.url), "hf:org/repo/m-00001-of-00000.gguf")
    with pytest.raises(UsageError, match="shard"):
        plan_hf(Hub(endpoint=hub.url), "hf:org/repo/m-00004-of-00003.gguf")


def test_rm_deletes_nothing_outside_the_store(store: Store, tmp_path: Path) -> None:
    """A manifest entry that points outside (written by an older Ponder's traversal)."""
    victim = tmp_path / "home" / "precious.gguf"
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_bytes(b"mine")
    inside = store.root / "org" / "repo" / "m.gguf"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"GGUF")
    store.add(
        InstalledModel(
            name="evil",
            files=(
                StoredFile("m.gguf", "org/repo/m.gguf", 4, "0" * 64),
                StoredFile("../../precious.gguf", "../../precious.gguf", 4, "0" * 64),
            ),
        )
    )
    removal = store.remove("evil")
    assert victim.read_bytes() == b"mine"
    assert not inside.exists()
    assert removal.freed == 4
    assert removal.kept == (victim.resolve(),)
    assert store.installed() == []


def test_the_pending_ledger_cannot_delete_outside_the_store(store: Store, tmp_path: Path) -> None:
    victim = tmp_path / "victim.part"
    victim.write_bytes(b"x")
    store.partial_dir().mkdir(parents=True)
    ledger = {"m": {"size": 1, "parts": ["../../../../victim.part"]}}
    (store.partial_dir() / "pending.json").write_text(json.dumps(ledger))
    forget_pending(store, "m", delete_parts=True)
    assert victim.exists()


# -- 2. bytes no hash vouches for --------------------------------------------------------


def test_a_file_without_a_sha256_is_refused_before_the_first_byte(
    hub: FakeHub, store: Store
) -> None:
    hub.add_file(REPO, "plain-Q4_K_M.gguf", DATA, lfs=False)  # ETag: a git sha1
    client = Hub(endpoint=hub.url)
    plan = plan_files(client, name="p", repo=REPO, revision="main", paths=["plain-Q4_K_M.gguf"])
    with pytest.raises(DownloadError, match="no sha256") as info:
        pull(plan, store, hub=client, policy=FAST)
    assert info.value.hint is not None and "--allow-unverified" in info.value.hint
    assert [r for r in hub.requests if r.method == "GET"] == []
    assert store.installed() == []


def test_allow_unverified_installs_it_marked_unverified(hub: FakeHub, store: Store) -> None:
    hub.add_file(REPO, "plain-Q4_K_M.gguf", DATA, lfs=False)
    client = Hub(endpoint=hub.url)
    plan = plan_files(client, name="p", repo=REPO, revision="main", paths=["plain-Q4_K_M.gguf"])
    model = pull(plan, store, hub=client, policy=FAST, allow_unverified=True)
    assert model.unverified
    found = store.find("p")
    assert found is not None and found.unverified
    assert store.primary_path(found).read_bytes() == DATA


def test_a_catalog_hash_verifies_a_file_the_hub_gives_none_for(hub: FakeHub, store: Store) -> None:
    sha = hub.add_file(REPO, "plain-Q4_K_M.gguf", DATA, lfs=False)
    client = Hub(endpoint=hub.url)
    plan = plan_files(
        client,
        name="p",
        repo=REPO,
        revision="main",
        paths=["plain-Q4_K_M.gguf"],
        expected_sha256=[sha],
    )
    model = pull(plan, store, hub=client, policy=FAST)
    assert not model.unverified and model.files[0].sha256 == sha


def test_a_commit_header_that_is_not_a_commit_id_is_refused(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add_file(REPO, "m-Q4_K_M.gguf", DATA)
    import huggingface_hub.file_download as fd

    real = fd.get_hf_file_metadata

    def hostile(*args: object, **kwargs: object) -> object:
        meta = real(*args, **kwargs)  # type: ignore[arg-type]
        return dataclasses.replace(meta, commit_hash="../../../../x")

    monkeypatch.setattr("huggingface_hub.get_hf_file_metadata", hostile)
    with pytest.raises(DownloadError, match="commit"):
        Hub(endpoint=hub.url).file(REPO, "m-Q4_K_M.gguf")


# -- 7. a server that trickles -----------------------------------------------------------


def _in_thread(fn: object, deadline: float = 60) -> BaseException | None:
    """Run ``fn`` with a cancel event; cancel it past ``deadline``. What it raised."""
    raised: list[BaseException] = []
    cancel = threading.Event()

    def body() -> None:
        try:
            fn(cancel)  # type: ignore[operator]
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        cancel.set()
        thread.join(30)
        return AssertionError(f"still running after {deadline} s")
    return raised[0] if raised else None


def test_a_trickling_server_is_given_up_on_and_the_partial_kept(hub: FakeHub, store: Store) -> None:
    hub.add_file(REPO, "m-Q4_K_M.gguf", DATA)
    client = Hub(endpoint=hub.url)
    plan = plan_files(client, name="m", repo=REPO, revision="main", paths=["m-Q4_K_M.gguf"])
    hub.throttle(20_000)  # a byte at a time would do too; 20 KB/s keeps the test short
    policy = TransferPolicy(
        stall_s=5, retries=2, backoff_s=0.05, slow_window_s=0.4, slow_bytes=50_000
    )
    error = _in_thread(lambda cancel: pull(plan, store, hub=client, policy=policy, cancel=cancel))
    assert isinstance(error, DownloadError) and not isinstance(error, Interrupted), error
    assert "trickl" in error.message and "partial file is kept" in error.message
    assert len(_byte_gets(hub)) == policy.retries + 1
    (partial,) = store.partial_dir().glob("*.part")
    kept = partial.stat().st_size
    assert 0 < kept < len(DATA)
    hub.throttle(None)
    pull(plan, store, hub=client, policy=policy)
    assert hub.requests[-1].range_start == kept
    model = store.find("m")
    assert model is not None and store.primary_path(model).read_bytes() == DATA


def test_a_slow_but_steady_server_is_not_a_trickle(hub: FakeHub, store: Store) -> None:
    hub.add_file(REPO, "m-Q4_K_M.gguf", DATA)
    client = Hub(endpoint=hub.url)
    plan = plan_files(client, name="m", repo=REPO, revision="main", paths=["m-Q4_K_M.gguf"])
    hub.throttle(2_000_000)
    policy = TransferPolicy(
        stall_s=5, retries=0, backoff_s=0.05, slow_window_s=0.2, slow_bytes=50_000
    )
    pull(plan, store, hub=client, policy=policy)
    assert len(_byte_gets(hub)) == 1


# -- 8. permissions under umask 000 ------------------------------------------------------


@pytest.fixture()
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _loose(root: Path) -> list[str]:
    """Folders above 0755 and files above 0644 under ``root`` (root included)."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        limit = 0o755 if path.is_dir() else 0o644
        if mode & ~limit:
            found.append(f"{path.relative_to(root.parent)} {mode:o}")
    return found


def test_a_pull_under_umask_000_is_writable_by_the_user_only(
    hub: FakeHub, tmp_path: Path, open_umask: None
) -> None:
    store = Store(tmp_path / "home" / "data" / "models")
    hub.add_file(REPO, "sub/m-Q4_K_M.gguf", DATA)
    client = Hub(endpoint=hub.url)
    plan = plan_files(client, name="m", repo=REPO, revision="main", paths=["sub/m-Q4_K_M.gguf"])
    hub.throttle(2_000_000)
    cancel = threading.Event()
    with pytest.raises(Interrupted):  # a partial file and the ledger, then the rest
        pull(
            plan,
            store,
            hub=client,
            policy=FAST,
            cancel=cancel,
            progress=lambda e: cancel.set() if e.done > 100_000 else None,
        )
    assert _loose(tmp_path / "home") == []
    hub.throttle(None)
    pull(plan, store, hub=client, policy=FAST)
    source = tmp_path / "mine.gguf"
    source.write_bytes(DATA)
    import_file(store, source, name="mine", link=False)
    assert _loose(tmp_path / "home") == []


def test_an_old_partial_left_world_writable_is_tightened(
    hub: FakeHub, store: Store, open_umask: None
) -> None:
    sha = hub.add_file(REPO, "m-Q4_K_M.gguf", DATA)
    store.partial_dir().mkdir(parents=True)
    partial = store.partial_dir() / f"{sha}.part"
    partial.write_bytes(DATA[:1000])
    os.chmod(partial, 0o666)
    client = Hub(endpoint=hub.url)
    plan = plan_files(client, name="m", repo=REPO, revision="main", paths=["m-Q4_K_M.gguf"])
    model = pull(plan, store, hub=client, policy=FAST)
    mode = stat.S_IMODE(store.primary_path(model).stat().st_mode)
    assert mode & ~0o644 == 0, oct(mode)
