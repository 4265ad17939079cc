"""Helpers shared by the tests that run `ponder` as a user does: a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def ponder(
    *args: str | Path, env: dict[str, str], stdin: bytes | None = b"", timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `python -m ponder ARGS` to completion; text output."""
    result = subprocess.run(
        [sys.executable, "-m", "ponder", *map(str, args)],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def start_ponder(*args: str | Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `python -m ponder ARGS` in the background, stderr readable without blocking."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ponder", *map(str, args)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    return proc


def read_stderr_until(proc: subprocess.Popen[bytes], at_least: int, timeout: float = 600) -> bytes:
    """Collect the process's stderr until it holds ``at_least`` bytes."""
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while len(seen) < at_least and time.monotonic() < deadline:
        seen += proc.stderr.read() or b""
        time.sleep(0.05)
    assert len(seen) >= at_least, f"only {len(seen)} bytes on stderr: {seen!r}"
    return seen


def assert_clean_error(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    """One line on stderr, the documented exit code, no traceback."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ponder: error: ")
    assert fragment in lines[0]
