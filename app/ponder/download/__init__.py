"""Downloads from the Hugging Face Hub: the only package that imports huggingface_hub.

The hub library does what it is good at: URLs, the user's token (``HF_TOKEN`` or
``hf auth login``), metadata (resolved commit, size, the LFS sha256) and its error
types. The byte transfer is written here by hand (:mod:`.transfer`), because
huggingface_hub >= 1.18 no longer resumes after a restart (docs/architecture.md#downloads:
2.4.0 started again from byte 0). Ours writes into ``<models>/.partial/<sha256>.part``,
which survives a crash, a kill or Ctrl-C, and continues with an HTTP Range request.
A read that sees no byte for ``stall_s``, or a response that brings fewer than
``slow_bytes`` in ``slow_window_s`` (a trickle), reconnects with backoff, a bounded
number of times. The finished bytes are hashed as they arrive and compared with the Hub's sha256
(and the catalog's, when it has one) before an atomic rename into the store, so a
half-written or wrong file is never listed or loaded. A file with neither hash is
refused unless the caller allows it (``--allow-unverified``), and no name from a ref,
a listing or a header is written outside the store (docs/architecture.md#downloads).

Redirects are followed by hand so the ``Authorization`` header is never sent to
another host (the Hub redirects file downloads to a CDN).

One job per module, each importing only those above it in this list:

* :mod:`.errors`: the download errors;
* :mod:`.hub`: metadata lookups through huggingface_hub (the one module importing it);
* :mod:`.refs`: from a model reference to a :class:`PullPlan` (quants, shard sets);
* :mod:`.pending`: the ledger of pulls that have not finished;
* :mod:`.transfer`: the resumable byte transfer;
* :mod:`.pulling`: one pull start to finish, into the store (not named ``pull``, so
  that ``ponder.download.pull`` stays the function).

The names below are the package's API; the submodules' other names are its own.
"""

from __future__ import annotations

from ponder.download.errors import (
    AccessError,
    DiskSpaceError,
    DownloadError,
    HashMismatchError,
    UnverifiedError,
)
from ponder.download.hub import Hub, RemoteFile, RepoEntry, offline
from ponder.download.pending import PendingPull, forget_pending, pending_pulls
from ponder.download.pulling import DISK_MARGIN, NoticeFn, pull
from ponder.download.refs import PullPlan, hf_name, parse_hf_ref, pick_quant, plan_files, plan_hf
from ponder.download.transfer import ProgressFn, TransferPolicy

__all__ = [
    "DISK_MARGIN",
    "AccessError",
    "DiskSpaceError",
    "DownloadError",
    "HashMismatchError",
    "Hub",
    "NoticeFn",
    "PendingPull",
    "ProgressFn",
    "PullPlan",
    "RemoteFile",
    "RepoEntry",
    "TransferPolicy",
    "UnverifiedError",
    "forget_pending",
    "hf_name",
    "offline",
    "parse_hf_ref",
    "pending_pulls",
    "pick_quant",
    "plan_files",
    "plan_hf",
    "pull",
]
