"""Pulls as the session runs them: what a reference fetches, and one pull with its events.

Split from :mod:`ponder.session.core` to keep that module to the session's own state;
the download machinery itself is :mod:`ponder.download`. A pull that stops on a full
disk becomes one line saying what is kept: the transfer writes straight into the
partial file, which a later pull resumes from and verifies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ponder import download
from ponder.catalog import Resolved
from ponder.errors import DiskFullError, is_disk_full
from ponder.events import Notice, OpenEvent, PullFinished, PullStarted
from ponder.store import InstalledModel, Store


def plan(
    hub: download.Hub, ref: str, default_quant: Callable[[str], Resolved]
) -> download.PullPlan:
    """What ``ref`` (an ``hf:`` reference or a catalog name) fetches, with sizes and hashes."""
    if ref.lower().startswith("hf:"):
        return download.plan_hf(hub, ref)
    entry = default_quant(ref)
    quant = entry.quant
    return download.plan_files(
        hub,
        name=entry.display_ref,
        repo=quant.repo,
        revision=quant.revision,
        paths=quant.files,
        expected_sha256=quant.sha256 or [],
        catalog_id=entry.model.id,
        quant=quant.quant,
    )


def pull(
    plan: download.PullPlan,
    store: Store,
    hub: download.Hub,
    emit: Callable[[OpenEvent], None],
    *,
    cancel: threading.Event | None = None,
    allow_unverified: bool = False,
) -> InstalledModel:
    """Fetch, verify and install ``plan``; ``emit`` hears the start, progress and end."""
    emit(PullStarted(plan.name, len(plan.files), plan.size))
    try:
        model = download.pull(
            plan,
            store,
            hub=hub,
            progress=emit,
            notice=lambda text: emit(Notice(text)),
            cancel=cancel,
            allow_unverified=allow_unverified,
        )
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFullError(
            f"the disk is full: the download of {plan.name} stopped; "
            "the part already downloaded is kept",
            hint=f"free some space in {store.root}, then `ponder pull {plan.name}` resumes it",
        ) from None
    emit(PullFinished(model.name, model.size, str(store.root)))
    return model
