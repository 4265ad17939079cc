"""From a model reference to a pull plan: Hub refs, quant picking and shard sets.

A reference is what the user typed, so a repo id or file path in it that could not
name a file inside the store (``..``, an absolute part, a backslash, a repo id the
Hub would refuse) is a usage error here, before any request (``ponder.paths`` holds
the rules).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from ponder import shards
from ponder.download.hub import Hub, RemoteFile
from ponder.errors import ModelNotFoundError, UsageError
from ponder.paths import repo_id_problem, repo_path_problem

_REF_HINT = "write hf:OWNER/REPO:QUANT or hf:OWNER/REPO/path/file.gguf"


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
            hint=_REF_HINT,
        )
    repo, path = "/".join(parts[:2]), "/".join(parts[2:]) or None
    problem = repo_id_problem(repo)
    if problem:
        raise UsageError(f"'{ref}': '{repo}' is not a Hub repo id ({problem})", hint=_REF_HINT)
    if path is not None:
        problem = repo_path_problem(path) or _shard_problem(path)
        if problem:
            raise UsageError(
                f"'{ref}': '{path}' is not a plain path inside the repo ({problem})",
                hint=_REF_HINT,
            )
    return repo, (quant.upper() or None), path


def _shard_problem(path: str) -> str | None:
    shard = shards.parse(path)
    if shard is not None and not 1 <= shard.number <= shard.count:
        return f"shard {shard.number} of {shard.count} does not exist"
    return None


def hf_name(ref: str, default_quant: str = "Q4_K_M") -> str:
    """The store name a Hub reference installs under (no network needed)."""
    repo, quant, path = parse_hf_ref(ref)
    return f"hf:{repo}/{path}" if path else f"hf:{repo}:{quant or default_quant}"


def plan_hf(hub: Hub, ref: str, default_quant: str = "Q4_K_M") -> PullPlan:
    repo, quant, path = parse_hf_ref(ref)
    if path is not None:
        # A shard's name gives the others' (-00001-of-00003); no need to list the repo.
        paths = shards.names(path)
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
        shard = shards.parse(path)
        groups.setdefault(shard.prefix if shard else path, []).append(path)
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
