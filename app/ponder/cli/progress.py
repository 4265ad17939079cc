"""What long operations print on stderr: pull progress, and the events of opening a model.

:class:`ProgressPrinter` consumes :class:`~ponder.events.DownloadProgress` events: on
a terminal a Rich bar (bytes, speed, ETA, file name); with ``--quiet``, or when
stderr is a pipe or a log file, a line per file at most every tenth of the way (and
at the end), so a log stays readable. Rich is imported only when a bar is shown.

:class:`OpenObserver` is the ``on_event`` callback for ``Session.run`` and
``Session.pull``: the plan (with ``--verbose``), warnings, notices, a pull.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from ponder.cli.interrupts import cancel_on_sigint
from ponder.events import (
    DownloadProgress,
    Notice,
    OpenEvent,
    Planned,
    PullFinished,
    PullStarted,
)
from ponder.units import decimal_size

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ponder.session import Session


class ProgressPrinter:
    def __init__(self, stream: TextIO, *, quiet: bool = False) -> None:
        self._stream = stream
        self._rich = not quiet and stream.isatty()
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._last_tenth: dict[str, int] = {}

    def __enter__(self) -> ProgressPrinter:
        if self._rich:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

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


class OpenObserver:
    """What `ponder run` and `ponder pull` print while a model opens: the plan, warnings,
    notices, and a pull's progress."""

    def __init__(self, *, verbose: bool = False, quiet: bool = False) -> None:
        self.verbose = verbose
        self.quiet = quiet
        self._printer: ProgressPrinter | None = None

    def __call__(self, event: OpenEvent) -> None:
        match event:
            case Planned():
                if self.verbose:
                    print(f"ponder: {event.summary}", file=sys.stderr)
                    print(event.plan, file=sys.stderr)
                for warning in event.warnings:
                    print(f"ponder: warning: {warning}", file=sys.stderr)
            case PullStarted():
                self._printer = ProgressPrinter(sys.stderr, quiet=self.quiet).__enter__()
                self._printer.note(
                    f"pulling {event.name}: {event.files} file(s), {decimal_size(event.size)}"
                )
            case DownloadProgress():
                if self._printer is not None:
                    self._printer.update(event)
            case PullFinished():
                self.close()
                print(
                    f"ponder: installed {event.name} ({decimal_size(event.size)}) in {event.where}",
                    file=sys.stderr,
                )
            case Notice():
                if self._printer is not None:
                    self._printer.note(event.text)
                else:
                    print(f"ponder: {event.text}", file=sys.stderr)

    def close(self) -> None:
        if self._printer is not None:
            self._printer.__exit__(None, None, None)
            self._printer = None


def pull_with_progress(
    session: Session, ref: str, *, quiet: bool, allow_unverified: bool = False
) -> None:
    """`ponder pull` and `ponder setup`: the pull, its progress, Ctrl-C keeping the part."""
    observer = OpenObserver(quiet=quiet)
    try:
        with cancel_on_sigint() as cancel:
            model = session.pull(
                ref, on_event=observer, cancel=cancel, allow_unverified=allow_unverified
            )
    finally:
        observer.close()
    if model.unverified:
        print(
            f"ponder: warning: {model.name} is unverified: no sha256 vouched for its bytes, "
            "so `ponder verify` can only tell whether they changed since",
            file=sys.stderr,
        )
