"""The fake Hub is faithful: the real huggingface_hub client, and raw HTTP, see what the Hub does.

Everything runs against 127.0.0.1; huggingface_hub is pointed at the fake with `endpoint=`.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from huggingface_hub import (
    HfApi,
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder

from support.fakehub import FakeHub, Fault, fake_hub_fixture

REPO = "acme/Tiny-GGUF"
GGUF = "tiny-Q4_K_M.gguf"
DATA = b"GGUF" + bytes(range(256)) * 40  # 10,244 bytes


@pytest.fixture()
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub set up as online, without Xet and without a token."""
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    # huggingface_hub reads these two at import time
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)


@pytest.fixture()
def hub(online: None) -> Iterator[FakeHub]:
    yield from fake_hub_fixture()


@pytest.fixture()
def repo(hub: FakeHub) -> str:
    """REPO with a GGUF at the top, one in a sub-folder, and a README; returns the GGUF's sha."""
    sha = hub.add_file(REPO, GGUF, DATA)
    hub.add_file(REPO, "sub/dir/other-Q8_0.gguf", b"GGUF-other")
    hub.add_file(REPO, "README.md", b"# Tiny\n")
    return sha


def cdn_url(hub: FakeHub, path: str = GGUF) -> str:
    meta = get_hf_file_metadata(hf_hub_url(REPO, path, endpoint=hub.url), token=False)
    assert meta.location is not None
    return meta.location


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def raw_get(url: str, timeout: float = 5) -> tuple[http.client.HTTPConnection, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    conn.request("GET", f"{parts.path}?{parts.query}")
    return conn, conn.getresponse()


# -- metadata, listings, downloads with the real client ----------------------------------------


def test_head_metadata_gives_commit_sha256_and_size(hub: FakeHub, repo: str) -> None:
    meta = get_hf_file_metadata(hf_hub_url(REPO, GGUF, endpoint=hub.url), token=False)
    assert meta.commit_hash == hub.head(REPO)
    assert meta.etag == repo == hashlib.sha256(DATA).hexdigest()
    assert meta.size == len(DATA)
    assert meta.location is not None and meta.location.startswith(f"{hub.cdn_url}/cdn/{repo}?")
    # One HEAD, answered by the 302 itself: the redirect to another origin is not followed.
    assert [(r.method, r.status) for r in hub.requests] == [("HEAD", 302)]
    assert hub.requests[0].file == f"{REPO}/{GGUF}"


def test_plain_git_file_has_git_sha1_etag(hub: FakeHub, repo: str) -> None:
    meta = get_hf_file_metadata(hf_hub_url(REPO, "README.md", endpoint=hub.url), token=False)
    blob = b"# Tiny\n"
    assert meta.etag == hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()
    assert meta.size == len(blob)
    assert meta.commit_hash == hub.head(REPO)


def test_list_repo_tree(hub: FakeHub, repo: str) -> None:
    api = HfApi(endpoint=hub.url, token=False)
    items = {item.path: item for item in api.list_repo_tree(REPO, recursive=True)}
    assert set(items) == {GGUF, "README.md", "sub", "sub/dir", "sub/dir/other-Q8_0.gguf"}
    top = items[GGUF]
    assert isinstance(top, RepoFile) and top.lfs is not None
    assert (top.size, top.lfs.sha256, top.lfs.size) == (len(DATA), repo, len(DATA))
    nested = items["sub/dir/other-Q8_0.gguf"]
    assert isinstance(nested, RepoFile) and nested.lfs is not None
    assert nested.lfs.sha256 == hashlib.sha256(b"GGUF-other").hexdigest()
    readme = items["README.md"]
    assert isinstance(readme, RepoFile) and readme.lfs is None
    assert isinstance(items["sub"], RepoFolder)

    assert {i.path for i in api.list_repo_tree(REPO)} == {GGUF, "README.md", "sub"}
    assert {i.path for i in api.list_repo_tree(REPO, "sub", recursive=True)} == {
        "sub/dir",
        "sub/dir/other-Q8_0.gguf",
    }
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree(REPO, "nope"))
    expanded = next(i for i in api.list_repo_tree(REPO, expand=True) if i.path == GGUF)
    assert expanded.last_commit is not None and expanded.last_commit.oid == hub.head(REPO)


def test_get_paths_info(hub: FakeHub, repo: str) -> None:
    api = HfApi(endpoint=hub.url, token=False)
    infos = api.get_paths_info(REPO, [GGUF, "sub", "missing.gguf"])
    assert [i.path for i in infos] == [GGUF, "sub"]
    gguf = infos[0]
    assert isinstance(gguf, RepoFile) and gguf.lfs is not None
    assert (gguf.size, gguf.lfs.sha256) == (len(DATA), repo)
    assert isinstance(infos[1], RepoFolder)


def test_model_info(hub: FakeHub, repo: str) -> None:
    api = HfApi(endpoint=hub.url, token=False)
    info = api.model_info(REPO)
    assert info.id == REPO and info.sha == hub.head(REPO)
    assert info.gated is False and info.private is False
    assert info.siblings is not None
    assert sorted(s.rfilename for s in info.siblings) == [
        "README.md",
        "sub/dir/other-Q8_0.gguf",
        GGUF,
    ]
    detailed = api.model_info(REPO, files_metadata=True, revision="main")
    assert detailed.siblings is not None
    sibling = next(s for s in detailed.siblings if s.rfilename == GGUF)
    assert sibling.size == len(DATA) and sibling.lfs is not None and sibling.lfs.sha256 == repo


def test_hf_hub_download_to_local_dir(hub: FakeHub, repo: str, tmp_path: Path) -> None:
    path = hf_hub_download(REPO, GGUF, local_dir=tmp_path, endpoint=hub.url, token=False)
    assert Path(path).read_bytes() == DATA
    get = hub.requests[-1]
    assert (get.method, get.status, get.path) == ("GET", 200, f"/cdn/{repo}")
    assert get.file == f"{REPO}/{GGUF}"


def test_old_commits_stay_resolvable(hub: FakeHub, repo: str, tmp_path: Path) -> None:
    old = hub.head(REPO)
    hub.add_file(REPO, "later.gguf", b"later")
    assert hub.head(REPO) != old
    new_url = hf_hub_url(REPO, "later.gguf", endpoint=hub.url)
    assert get_hf_file_metadata(new_url, token=False).commit_hash == hub.head(REPO)
    old_url = hf_hub_url(REPO, "later.gguf", revision=old, endpoint=hub.url)
    with pytest.raises(RemoteEntryNotFoundError):
        get_hf_file_metadata(old_url, token=False)
    path = hf_hub_download(
        REPO, GGUF, revision=old, local_dir=tmp_path, endpoint=hub.url, token=False
    )
    assert Path(path).read_bytes() == DATA


def test_file_on_disk_is_served(hub: FakeHub, tmp_path: Path) -> None:
    big = tmp_path / "big.gguf"
    big.write_bytes(bytes(range(256)) * 12_289)  # ~3 MB, not a multiple of anything round
    sha = hub.add_file(REPO, "big.gguf", big)
    assert sha == hashlib.sha256(big.read_bytes()).hexdigest()
    status, _, body = fetch(cdn_url(hub, "big.gguf"), {"Range": "bytes=1000000-"})
    assert status == 206 and body == big.read_bytes()[1_000_000:]


# -- errors, as huggingface_hub types them -----------------------------------------------------


def test_missing_repo_is_repository_not_found(hub: FakeHub) -> None:
    with pytest.raises(RepositoryNotFoundError) as caught:
        get_hf_file_metadata(hf_hub_url("acme/nope", GGUF, endpoint=hub.url), token=False)
    assert type(caught.value) is RepositoryNotFoundError
    assert caught.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=False).model_info("acme/nope")


def test_missing_file_is_entry_not_found(hub: FakeHub, repo: str, tmp_path: Path) -> None:
    url = hf_hub_url(REPO, "nope.gguf", endpoint=hub.url)
    with pytest.raises(RemoteEntryNotFoundError) as caught:
        get_hf_file_metadata(url, token=False)
    assert caught.value.response.status_code == 404
    assert caught.value.response.headers["X-Repo-Commit"] == hub.head(REPO)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "nope.gguf", local_dir=tmp_path, endpoint=hub.url, token=False)


def test_missing_revision_is_revision_not_found(hub: FakeHub, repo: str) -> None:
    url = hf_hub_url(REPO, GGUF, revision="no-such-branch", endpoint=hub.url)
    with pytest.raises(RevisionNotFoundError):
        get_hf_file_metadata(url, token=False)
    with pytest.raises(RevisionNotFoundError):
        HfApi(endpoint=hub.url, token=False).model_info(REPO, revision="f" * 40)


def test_gated_repo(online: None, tmp_path: Path) -> None:
    with FakeHub(require_token="hf_good") as hub:
        hub.add_file("meta/Gated", GGUF, DATA, gated=True)
        url = hf_hub_url("meta/Gated", GGUF, endpoint=hub.url)
        with pytest.raises(GatedRepoError) as anonymous:
            get_hf_file_metadata(url, token=False)
        assert anonymous.value.response.status_code == 401
        with pytest.raises(GatedRepoError) as refused:
            get_hf_file_metadata(url, token="hf_bad")
        assert refused.value.response.status_code == 403
        assert "restricted" in str(refused.value)
        with pytest.raises(GatedRepoError):
            hf_hub_download("meta/Gated", GGUF, local_dir=tmp_path, endpoint=hub.url, token=False)
        assert get_hf_file_metadata(url, token="hf_good").etag == hashlib.sha256(DATA).hexdigest()
        path = hf_hub_download(
            "meta/Gated", GGUF, local_dir=tmp_path, endpoint=hub.url, token="hf_good"
        )
        assert Path(path).read_bytes() == DATA
        head, get = hub.requests[-2:]
        assert head.headers["Authorization"] == "Bearer hf_good"
        assert "authorization" not in get.headers  # not forwarded to the CDN origin


def test_gated_metadata_is_public_and_private_repo_is_hidden(hub: FakeHub) -> None:
    hub.add_file("meta/Gated", GGUF, DATA, gated=True)
    hub.add_repo("acme/Secret", private=True)
    api = HfApi(endpoint=hub.url, token=False)
    assert api.model_info("meta/Gated").gated == "auto"
    with pytest.raises(RepositoryNotFoundError) as caught:
        api.model_info("acme/Secret")
    assert type(caught.value) is RepositoryNotFoundError
    assert caught.value.response.status_code == 401


# -- bytes: ranges, keep-alive, recording ------------------------------------------------------


def test_ranges(hub: FakeHub, repo: str) -> None:
    url = cdn_url(hub)
    status, headers, body = fetch(url)
    assert (status, body) == (200, DATA)
    assert headers["Accept-Ranges"] == "bytes" and headers["ETag"] == f'"{repo}"'
    assert headers["Content-Length"] == str(len(DATA))

    status, headers, body = fetch(url, {"Range": "bytes=100-"})
    assert (status, body) == (206, DATA[100:])
    assert headers["Content-Range"] == f"bytes 100-{len(DATA) - 1}/{len(DATA)}"

    status, headers, body = fetch(url, {"Range": "bytes=10-19"})
    assert (status, body, headers["Content-Range"]) == (
        206,
        DATA[10:20],
        f"bytes 10-19/{len(DATA)}",
    )

    status, _, body = fetch(url, {"Range": "bytes=-4"})
    assert (status, body) == (206, DATA[-4:])

    status, headers, _ = fetch(url, {"Range": f"bytes={len(DATA)}-"})
    assert (status, headers["Content-Range"]) == (416, f"bytes */{len(DATA)}")

    status, _, body = fetch(url, {"Range": "bytes=100-", "If-Range": f'"{repo}"'})
    assert (status, body) == (206, DATA[100:])
    status, _, body = fetch(url, {"Range": "bytes=100-", "If-Range": '"something-else"'})
    assert (status, body) == (200, DATA)

    assert [r.range_start for r in hub.requests if r.path.startswith("/cdn/")] == [
        None,
        100,
        10,
        None,
        len(DATA),
        100,
        100,
    ]


def test_keep_alive_and_concurrency(hub: FakeHub, repo: str) -> None:
    parts = urlsplit(cdn_url(hub))
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        for _ in range(3):  # one connection, three requests
            conn.request("GET", f"{parts.path}?{parts.query}")
            assert conn.getresponse().read() == DATA
    finally:
        conn.close()
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: fetch(cdn_url(hub))[2], range(16)))
    assert bodies == [DATA] * 16


def test_throttle(hub: FakeHub, repo: str) -> None:
    url = cdn_url(hub)
    hub.throttle(50_000)
    began = time.monotonic()
    assert fetch(url)[2] == DATA
    assert time.monotonic() - began >= 0.15  # 10 kB at 50 kB/s
    hub.throttle(None)


# -- faults ------------------------------------------------------------------------------------


def test_fault_stall_and_quick_stop(hub: FakeHub, repo: str) -> None:
    hub.fail(f"{REPO}/{GGUF}", Fault("stall", after_bytes=1000, seconds=30))
    url = cdn_url(hub)
    conn, response = raw_get(url)
    try:
        assert response.status == 200 and response.read(1000) == DATA[:1000]
        assert conn.sock is not None
        conn.sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            response.read(1)
    finally:
        conn.close()

    hub.fail(f"{REPO}/{GGUF}", Fault("stall", after_bytes=10, seconds=30))
    conn, response = raw_get(url)
    try:
        assert response.read(10) == DATA[:10]
        began = time.monotonic()
        hub.stop()  # while the stall sleeps
        assert time.monotonic() - began < 2
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        conn.close()


def test_fault_cut(hub: FakeHub, repo: str) -> None:
    hub.fail(f"{REPO}/{GGUF}", Fault("cut", after_bytes=500))
    conn, response = raw_get(cdn_url(hub))
    try:
        with pytest.raises(http.client.IncompleteRead) as caught:
            response.read()
        assert caught.value.partial == DATA[:500]
    finally:
        conn.close()
    assert fetch(cdn_url(hub))[2] == DATA  # times=1: the next GET is whole


def test_fault_wrong_bytes(hub: FakeHub, repo: str) -> None:
    hub.fail(f"{REPO}/{GGUF}", Fault("wrong_bytes"))
    status, headers, body = fetch(cdn_url(hub))
    assert status == 200 and len(body) == len(DATA)
    assert headers["ETag"] == f'"{repo}"'  # still claims the right content
    assert hashlib.sha256(body).hexdigest() != repo


def test_fault_status(hub: FakeHub, repo: str) -> None:
    key = f"{REPO}/{GGUF}"
    hub.fail(key, Fault("status", status=500))
    hub.fail(key, Fault("status", status=429), times=2)
    url = cdn_url(hub)
    assert fetch(url)[0] == 500
    status, headers, _ = fetch(url)
    assert (status, headers["Retry-After"]) == (429, "1")
    assert fetch(url)[0] == 429
    assert fetch(url)[0] == 200
    # HEAD never consumes a fault, and faults touch only the bytes, not the resolve HEAD.
    hub.fail(key, Fault("status", status=503))
    assert get_hf_file_metadata(hf_hub_url(REPO, GGUF, endpoint=hub.url), token=False).size
    assert fetch(url)[0] == 503


def test_hf_hub_download_resumes_after_a_cut(hub: FakeHub, tmp_path: Path) -> None:
    # http_get keeps only whole 10 MiB chunks (constants.DOWNLOAD_CHUNK_SIZE) from a cut
    # response, so the cut must fall past the first chunk for the retry to send a Range.
    data = bytes(range(256)) * (11 * 4096)  # 11 MiB
    hub.add_file(REPO, "big.gguf", data)
    hub.fail(f"{REPO}/big.gguf", Fault("cut", after_bytes=(10 << 20) + 100))
    path = hf_hub_download(REPO, "big.gguf", local_dir=tmp_path, endpoint=hub.url, token=False)
    assert Path(path).read_bytes() == data
    gets = [r for r in hub.requests if r.method == "GET"]
    assert [(r.status, r.range_start) for r in gets] == [(200, None), (206, 10 << 20)]


def test_status_fault_reaches_hf_hub_download(hub: FakeHub, repo: str, tmp_path: Path) -> None:
    hub.fail(f"{REPO}/{GGUF}", Fault("status", status=500))
    assert HfApi(endpoint=hub.url, token=False).model_info(REPO).sha  # API calls are untouched
    with pytest.raises(HfHubHTTPError) as caught:
        hf_hub_download(REPO, GGUF, local_dir=tmp_path, endpoint=hub.url, token=False)
    assert caught.value.response.status_code == 500


def test_stop_is_idempotent_and_threads_end(hub: FakeHub, repo: str) -> None:
    conn, response = raw_get(cdn_url(hub))
    response.read()  # leaves a keep-alive connection open on the server
    before = threading.active_count()
    hub.stop()
    hub.stop()
    conn.close()
    assert threading.active_count() < before
