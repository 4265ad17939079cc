"""Pulls against the loopback fake Hub: every fault a real connection has.

Each scenario ends with nothing corrupt in the store: either the verified file is
installed and listed, or nothing is listed and at most a resumable partial is kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import NamedTuple

import pytest

from ponder.download import (
    DISK_MARGIN,
    AccessError,
    DiskSpaceError,
    DownloadError,
    HashMismatchError,
    Hub,
    TransferPolicy,
    forget_pending,
    parse_hf_ref,
    pending_pulls,
    pick_quant,
    plan_files,
    plan_hf,
    pull,
)
from ponder.errors import Interrupted, ModelNotFoundError
from ponder.events import DownloadProgress
from ponder.store import Store
from support.fakehub import FakeHub, Fault

REPO = "acme/Tiny-R1-GGUF"
FAST = TransferPolicy(stall_s=0.5, retries=3, backoff_s=0.05)


class Setup(NamedTuple):
    hub: FakeHub
    client: Hub
    store: Store
    data: bytes
    sha: str


@pytest.fixture()
def setup(fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    data = os.urandom(3 * 1024 * 1024 + 123)
    sha = fake_hub.add_file(REPO, "Tiny-R1-Q4_K_M.gguf", data)
    return Setup(fake_hub, Hub(endpoint=fake_hub.url), Store(tmp_path / "models"), data, sha)


def _plan(s: Setup, path: str = "Tiny-R1-Q4_K_M.gguf", expected: str | None = None):  # type: ignore[no-untyped-def]
    return plan_files(
        s.client,
        name="tiny",
        repo=REPO,
        revision="main",
        paths=[path],
        expected_sha256=[expected] if expected else [],
    )


def _installed_bytes(s: Setup) -> bytes:
    model = s.store.find("tiny")
    assert model is not None
    return s.store.primary_path(model).read_bytes()


def _gets(hub: FakeHub) -> list[int | None]:
    return [r.range_start for r in hub.requests if r.method == "GET" and r.path.startswith("/cdn")]


def _nothing_listed(s: Setup) -> None:
    assert s.store.installed() == []
    assert not list(s.store.root.glob(f"{REPO}/*.gguf"))


def test_metadata_comes_from_the_hub(setup: Setup) -> None:
    plan = _plan(setup)
    (remote,) = plan.files
    assert remote.sha256 == setup.sha and remote.size == len(setup.data)
    assert remote.commit == setup.hub.head(REPO)
    assert remote.commit in remote.url  # pinned: every byte comes from one commit


def test_pull_follows_the_redirect_verifies_and_installs(setup: Setup) -> None:
    events: list[DownloadProgress] = []
    model = pull(_plan(setup), setup.store, hub=setup.client, policy=FAST, progress=events.append)
    assert _installed_bytes(setup) == setup.data
    assert model.files[0].sha256 == setup.sha and model.commit == setup.hub.head(REPO)
    assert events[-1].done == events[-1].total == len(setup.data)
    assert not list(setup.store.partial_dir().glob("*.part"))
    assert [c.status for c in setup.store.verify(model)] == ["ok"]


def test_the_token_never_reaches_the_cdn(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    fake_hub.add_repo("acme/private", private=True)
    fake_hub.require_token = "hf_secret"
    fake_hub.add_file("acme/private", "m-Q4_K_M.gguf", b"GGUF" + b"x" * 5000)
    client = Hub(endpoint=fake_hub.url, token="hf_secret")
    plan = plan_files(
        client, name="p", repo="acme/private", revision="main", paths=["m-Q4_K_M.gguf"]
    )
    pull(plan, Store(tmp_path), hub=client, policy=FAST)
    hub_side = [r for r in fake_hub.requests if not r.path.startswith("/cdn")]
    cdn_side = [r for r in fake_hub.requests if r.path.startswith("/cdn")]
    assert cdn_side and all("authorization" not in r.headers for r in cdn_side)
    assert any(r.headers.get("authorization") == "Bearer hf_secret" for r in hub_side)


def test_stall_then_recovery_resumes_where_it_stopped(setup: Setup) -> None:
    setup.hub.fail(f"{REPO}/Tiny-R1-Q4_K_M.gguf", Fault("stall", after_bytes=1_000_000, seconds=5))
    pull(_plan(setup), setup.store, hub=setup.client, policy=FAST)
    assert _installed_bytes(setup) == setup.data
    starts = _gets(setup.hub)
    assert starts[0] == 0 and starts[1] is not None and starts[1] >= 1_000_000 - 1024 * 1024
    assert starts[1] == max(s or 0 for s in starts)


def test_stall_past_the_retry_limit_keeps_the_partial(setup: Setup) -> None:
    setup.hub.fail(
        f"{REPO}/Tiny-R1-Q4_K_M.gguf",
        Fault("stall", after_bytes=100_000, seconds=5),
        times=FAST.retries + 1,
    )
    with pytest.raises(DownloadError) as info:
        pull(_plan(setup), setup.store, hub=setup.client, policy=FAST)
    assert "stalled" in str(info.value) and "partial file is kept" in str(info.value)
    assert "run the same command again" in str(info.value)
    (partial,) = setup.store.partial_dir().glob("*.part")
    assert partial.stat().st_size >= 100_000
    _nothing_listed(setup)
    pull(_plan(setup), setup.store, hub=setup.client, policy=FAST)  # the next run finishes it
    assert _installed_bytes(setup) == setup.data


def test_cut_connection_is_retried(setup: Setup) -> None:
    setup.hub.fail(f"{REPO}/Tiny-R1-Q4_K_M.gguf", Fault("cut", after_bytes=500_000), times=2)
    pull(_plan(setup), setup.store, hub=setup.client, policy=FAST)
    assert _installed_bytes(setup) == setup.data
    assert len(_gets(setup.hub)) == 3


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_are_retried(setup: Setup, status: int) -> None:
    setup.hub.fail(f"{REPO}/Tiny-R1-Q4_K_M.gguf", Fault("status", status=status))
    pull(_plan(setup), setup.store, hub=setup.client, policy=FAST)
    assert _installed_bytes(setup) == setup.data
    assert [r.status for r in setup.hub.requests if r.path.startswith("/cdn")] == [status, 206]


def test_wrong_bytes_are_deleted_and_reported(setup: Setup) -> None:
    setup.hub.fail(f"{REPO}/Tiny-R1-Q4_K_M.gguf", Fault("wrong_bytes"))
    with pytest.raises(HashMismatchError) as info:
        pull(_plan(setup), setup.store, hub=setup.client, policy=FAST)
    assert "the bad file was deleted" in str(info.value) and setup.sha in str(info.value)
    assert not list(setup.store.partial_dir().glob("*.part"))
    _nothing_listed(setup)


def test_catalog_hash_that_disagrees_with_the_hub_stops_before_downloading(setup: Setup) -> None:
    with pytest.raises(HashMismatchError, match="nothing was downloaded"):
        pull(_plan(setup, expected="0" * 64), setup.store, hub=setup.client, policy=FAST)
    assert _gets(setup.hub) == []


def test_gated_private_and_missing(setup: Setup) -> None:
    setup.hub.add_file("acme/gated", "g-Q4_K_M.gguf", b"GGUF", gated=True)
    with pytest.raises(AccessError, match="accept its licence"):
        setup.client.file("acme/gated", "g-Q4_K_M.gguf")
    with pytest.raises(ModelNotFoundError, match="not found on the Hub"):
        setup.client.file("acme/nothing-here", "x.gguf")
    with pytest.raises(ModelNotFoundError) as info:
        setup.client.file(REPO, "Tiny-R1-Q4_K_S.gguf")
    assert "did you mean Tiny-R1-Q4_K_M.gguf" in str(info.value)


def test_disk_too_small_is_refused_with_numbers(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small disk cannot be made here without privileges, so the OS's answer is stood in."""
    real = shutil.disk_usage

    def small(path: str | os.PathLike[str]) -> object:
        usage = real(path)
        return type(usage)(usage.total, usage.total - 1_000_000, 1_000_000)

    monkeypatch.setattr("ponder.download.pulling.shutil.disk_usage", small)
    with pytest.raises(DiskSpaceError) as info:
        pull(_plan(setup), setup.store, hub=setup.client, policy=FAST)
    assert "need 3.1 MB, 1.0 MB free" in str(info.value)
    assert _gets(setup.hub) == []


def test_split_shards_are_all_fetched_and_listed_once(setup: Setup) -> None:
    parts = [os.urandom(200_000 + i) for i in range(3)]
    for i, part in enumerate(parts, start=1):
        setup.hub.add_file(REPO, f"Q8_0/Tiny-R1-Q8_0-{i:05d}-of-00003.gguf", part)
    plan = plan_hf(setup.client, f"hf:{REPO}:q8_0")
    assert [f.path for f in plan.files] == [
        f"Q8_0/Tiny-R1-Q8_0-{i:05d}-of-00003.gguf" for i in (1, 2, 3)
    ]
    model = pull(plan, setup.store, hub=setup.client, policy=FAST)
    assert [m.name for m in setup.store.installed()] == [f"hf:{REPO}:Q8_0"]
    for stored, part in zip(model.files, parts, strict=True):
        assert setup.store.path_of(stored).read_bytes() == part


def test_a_named_shard_brings_its_siblings_without_listing_the_repo(setup: Setup) -> None:
    for i in (1, 2, 3):
        setup.hub.add_file(REPO, f"Q8_0/Tiny-R1-Q8_0-{i:05d}-of-00003.gguf", os.urandom(1000))
    plan = plan_hf(setup.client, f"hf:{REPO}/Q8_0/Tiny-R1-Q8_0-00002-of-00003.gguf")
    assert [f.path for f in plan.files] == [
        f"Q8_0/Tiny-R1-Q8_0-{i:05d}-of-00003.gguf" for i in (1, 2, 3)
    ]
    assert not [r for r in setup.hub.requests if r.path.startswith("/api/")]


def test_two_pulls_of_one_file_do_not_corrupt_each_other(setup: Setup) -> None:
    setup.hub.throttle(4_000_000)
    notices: list[str] = []
    errors: list[BaseException] = []

    def one(notice: list[str]) -> None:
        try:
            pull(_plan(setup), setup.store, hub=setup.client, policy=FAST, notice=notice.append)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(notices,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert any("another ponder is downloading" in n for n in notices)
    assert _installed_bytes(setup) == setup.data
    assert len(_gets(setup.hub)) == 1  # the second found the file done and verified it


def _cancelled_pull(setup: Setup, after_bytes: int) -> None:
    """A pull cancelled once ``after_bytes`` have arrived."""
    setup.hub.throttle(2_000_000)
    cancel = threading.Event()

    def stop_midway(event: DownloadProgress) -> None:
        if event.done > after_bytes:
            cancel.set()

    with pytest.raises(Interrupted):
        pull(
            _plan(setup),
            setup.store,
            hub=setup.client,
            policy=FAST,
            progress=stop_midway,
            cancel=cancel,
        )


def test_cancel_keeps_a_resumable_partial(setup: Setup) -> None:
    _cancelled_pull(setup, 500_000)
    (partial,) = setup.store.partial_dir().glob("*.part")
    kept = partial.stat().st_size
    assert kept > 500_000
    _nothing_listed(setup)
    (pending,) = pending_pulls(setup.store)  # what a restarted app offers to resume
    assert pending.name == "tiny" and pending.size == len(setup.data)
    assert pending.done(setup.store) == kept
    setup.hub.throttle(None)
    pull(_plan(setup), setup.store, hub=setup.client, policy=FAST)
    assert _gets(setup.hub)[-1] == kept
    assert _installed_bytes(setup) == setup.data
    assert pending_pulls(setup.store) == []


def test_a_discarded_pending_pull_deletes_its_partial_file(setup: Setup) -> None:
    _cancelled_pull(setup, 100_000)
    assert list(setup.store.partial_dir().glob("*.part"))
    forget_pending(setup.store, "tiny", delete_parts=True)
    assert pending_pulls(setup.store) == []
    assert not list(setup.store.partial_dir().glob("*.part"))


def test_offline_mode_refuses_without_a_request(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        _plan(setup)
    assert setup.hub.requests == []


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("hf:bartowski/X-GGUF:q5_k_m", ("bartowski/X-GGUF", "Q5_K_M", None)),
        ("hf:bartowski/X-GGUF", ("bartowski/X-GGUF", None, None)),
        ("hf:o/r/sub/f-Q4_K_M.gguf", ("o/r", None, "sub/f-Q4_K_M.gguf")),
    ],
)
def test_hub_references(ref: str, expected: tuple[str, str | None, str | None]) -> None:
    assert parse_hf_ref(ref) == expected


@pytest.mark.parametrize("ref", ["hf:justone", "hf:o/r/sub/notes.txt", "hf:o/r/f.gguf:Q4_K_M"])
def test_bad_hub_references(ref: str) -> None:
    with pytest.raises(ModelNotFoundError, match="not a Hub reference"):
        parse_hf_ref(ref)


def test_pick_quant_lists_what_exists() -> None:
    paths = ["m-Q4_K_M.gguf", "m-Q8_0.gguf", "m-IQ4_XS.gguf"]
    assert pick_quant(paths, "Q8_0", "o/r") == ["m-Q8_0.gguf"]
    with pytest.raises(ModelNotFoundError) as info:
        pick_quant(paths, "Q6_K", "o/r")
    assert "available: IQ4_XS, Q4_K_M, Q8_0" in str(info.value)


def test_sha256_helper_matches_hashlib(tmp_path: Path) -> None:
    from ponder.store import sha256_file

    path = tmp_path / "f"
    path.write_bytes(b"abc" * 100_000)
    assert sha256_file(path) == hashlib.sha256(b"abc" * 100_000).hexdigest()


def test_refused_bytes_are_not_retried(setup: Setup) -> None:
    """A token revoked between the metadata and the transfer: say so at once."""
    setup.hub.fail(f"{REPO}/Tiny-R1-Q4_K_M.gguf", Fault("status", status=401), times=5)
    with pytest.raises(AccessError, match="hf auth login"):
        pull(_plan(setup), setup.store, hub=setup.client, policy=FAST)
    assert len(_gets(setup.hub)) == 1
    _nothing_listed(setup)


def test_the_disk_check_counts_a_partial_named_by_the_catalogs_hash(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a Hub hash the partial file is named by the catalog's; a resume needs
    room only for the bytes still missing."""
    data = os.urandom(3_000_000)
    sha = setup.hub.add_file(REPO, "NoLfs-Q4_K_M.gguf", data, lfs=False)
    plan = _plan(setup, "NoLfs-Q4_K_M.gguf", expected=sha)
    assert plan.files[0].sha256 is None  # the Hub does not say; the catalog does
    setup.hub.throttle(2_000_000)
    cancel = threading.Event()
    with pytest.raises(Interrupted):
        pull(
            plan,
            setup.store,
            hub=setup.client,
            policy=FAST,
            progress=lambda event: cancel.set() if event.done > 2_000_000 else None,
            cancel=cancel,
        )
    setup.hub.throttle(None)
    (partial,) = setup.store.partial_dir().glob(f"{sha}.part")
    missing = len(data) - partial.stat().st_size
    real = shutil.disk_usage

    def just_enough(path: str | os.PathLike[str]) -> object:
        usage = real(path)
        free = missing + DISK_MARGIN + 100_000
        return type(usage)(usage.total, usage.total - free, free)

    monkeypatch.setattr("ponder.download.pulling.shutil.disk_usage", just_enough)
    pull(plan, setup.store, hub=setup.client, policy=FAST)
    assert _installed_bytes(setup) == data
