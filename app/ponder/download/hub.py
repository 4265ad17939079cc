"""Metadata from the Hub through huggingface_hub: the only module that imports it.

What the Hub answers is not trusted to name things: a listed file whose path is not a
plain path inside the repo, a commit that is not a commit id, or a negative size is a
hostile or broken server, refused with one line (exit 1) before anything is written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from difflib import get_close_matches

from ponder import __version__
from ponder.download.errors import AccessError, DownloadError, short
from ponder.errors import ModelNotFoundError, PonderError
from ponder.paths import repo_path_problem

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
COMMIT_HEX = re.compile(r"^[0-9a-f]{40}$")


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
        _refuse_unsafe_path(repo, path)
        url = hf_hub_url(repo, path, revision=revision, endpoint=self.endpoint)
        try:
            meta = get_hf_file_metadata(url, token=self._token, endpoint=self.endpoint)
        except Exception as exc:
            raise self._translate(exc, repo, path, revision) from None
        etag = (meta.etag or "").strip('"').lower()
        commit = meta.commit_hash
        size = int(meta.size or 0)
        if commit is not None and not COMMIT_HEX.match(commit):
            raise DownloadError(
                f"the Hub's answer for {repo}/{path} names the commit {commit[:60]!r}, "
                "which is not a commit id; nothing was downloaded",
                hint="check HF_ENDPOINT: that server does not answer as the Hub does",
            )
        if size < 0:
            raise DownloadError(f"the Hub's answer for {repo}/{path} gives a size of {size}")
        return RemoteFile(
            repo=repo,
            path=path,
            revision=revision,
            commit=commit,
            size=size,
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
        entries = [
            RepoEntry(item.path, int(item.size or 0), item.lfs.sha256 if item.lfs else None)
            for item in tree
            if isinstance(item, RepoFile) and item.path.lower().endswith(".gguf")
        ]
        for entry in entries:
            _refuse_unsafe_path(repo, entry.path)
        return entries

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
            f"cannot reach the Hub for {repo}: {short(exc)}",
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


def _refuse_unsafe_path(repo: str, path: str) -> None:
    """A file name from a listing (or anywhere) that could climb out of the repo's folder."""
    problem = repo_path_problem(path)
    if problem:
        raise DownloadError(
            f"{repo} names the file {path[:120]!r}, which is not a plain path inside the repo "
            f"({problem}); nothing was downloaded",
            hint="check HF_ENDPOINT and the repo: a Hub never lists such a file",
        )


def _refuse_offline(what: str) -> None:
    if offline():
        raise DownloadError(
            f"cannot fetch {what}: HF_HUB_OFFLINE is set",
            hint="unset HF_HUB_OFFLINE to download, or run an installed model",
        )
