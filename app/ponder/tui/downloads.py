"""A download as the app keeps it: one immutable record per model.

The app replaces a model's record as progress comes in and hands the screens the
records as they stand (:class:`~ponder.tui.messages.DownloadsChanged`); a screen
reads them and never changes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DownloadStatus = Literal["starting", "running", "paused", "failed", "done"]


@dataclass(frozen=True, slots=True)
class DownloadState:
    """One model's download as the UI shows it."""

    name: str
    total: int = 0
    done: int = 0
    bytes_per_s: float = 0.0
    status: DownloadStatus = "starting"
    error: str = ""

    @property
    def active(self) -> bool:
        """Starting or running: not paused, failed or done."""
        return self.status in ("starting", "running")

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.bytes_per_s <= 0 or not self.total:
            return None
        return (self.total - self.done) / self.bytes_per_s
