"""Download progress on stderr: a Rich bar on a terminal, sparse lines elsewhere.

The transfer emits :class:`~ponder.events.DownloadProgress` events; this is one
consumer of them (the TUI will be another). On a terminal it shows bytes, speed,
ETA and the file name. With ``--quiet``, or when stderr is a pipe or a log file,
it prints a line per file at most every tenth of the way (and at the end), so a
log stays readable.
"""

from __future__ import annotations

from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ponder.events import DownloadProgress


class ProgressPrinter:
    def __init__(self, stream: TextIO, *, quiet: bool = False) -> None:
        self._stream = stream
        self._rich = not quiet and stream.isatty()
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._last_tenth: dict[str, int] = {}

    def __enter__(self) -> ProgressPrinter:
        if self._rich:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def note(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(f"ponder: {text}", highlight=False)
        else:
            print(f"ponder: {text}", file=self._stream, flush=True)

    def update(self, event: DownloadProgress) -> None:
        if self._progress is not None:
            task = self._tasks.get(event.filename)
            if task is None:
                task = self._progress.add_task(event.filename, total=event.total)
                self._tasks[event.filename] = task
            self._progress.update(task, completed=event.done, total=event.total)
            return
        self._line(event)

    def _line(self, event: DownloadProgress) -> None:
        if not event.total:
            return
        tenth = min(10, event.done * 10 // event.total)
        if self._last_tenth.get(event.filename, -1) >= tenth:
            return
        self._last_tenth[event.filename] = tenth
        speed = f", {event.bytes_per_s / 1e6:.1f} MB/s" if event.bytes_per_s else ""
        print(
            f"ponder: {event.filename}: {tenth * 10}% of {event.total / 1e9:.2f} GB{speed}",
            file=self._stream,
            flush=True,
        )
