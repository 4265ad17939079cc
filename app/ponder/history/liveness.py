"""Whether the process that wrote a streaming reply may still be writing it."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def writer_alive(pid: int | None, start: str | None) -> bool:
    """Whether the process that wrote a streaming row may still be writing it.

    Unsure answers say alive: a live reply must never be marked interrupted.
    """
    if pid is None or pid <= 0 or not _pid_exists(pid):
        return False
    if start is None:
        return True
    current = _process_start(pid)
    return current is None or current == start  # a different start: the PID was reused


def _pid_exists(pid: int) -> bool:
    if sys.platform == "win32":
        return _pid_exists_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # PermissionError: alive but another user's
    return True


if sys.platform == "win32":

    def _pid_exists_windows(pid: int) -> bool:
        """os.kill(pid, 0) would terminate the process on Windows; ask the kernel."""
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() != 87  # ERROR_INVALID_PARAMETER: no process
        try:
            code = wintypes.DWORD()
            ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return not ok or code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)


def _process_start(pid: int) -> str | None:
    """The process start time in clock ticks from ``/proc`` (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of proc(5)


def own_start() -> str | None:
    """This process's start time, recorded with each reply it streams."""
    return _process_start(os.getpid())
