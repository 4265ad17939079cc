"""How a download reads in a table cell or under a progress bar."""

from __future__ import annotations

from ponder.tui.downloads import DownloadState
from ponder.tui.format import duration, size


def download_line(state: DownloadState) -> str:
    percent = f"{state.fraction:.0%}"
    if state.status == "starting":
        return "starting…"
    if state.status == "running":
        parts = [f"↓ {percent} of {size(state.total)}"]
        if state.bytes_per_s > 0:
            parts.append(f"{size(state.bytes_per_s)}/s")
        if state.eta_s is not None:
            parts.append(f"{duration(state.eta_s)} left")
        return " · ".join(parts)
    if state.status == "paused":
        return f"paused at {percent} · Enter resumes"
    if state.status == "failed":
        return f"failed: {state.error}"
    return "installed"
