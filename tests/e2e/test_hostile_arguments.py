"""Arguments a shell can pass that are not text: one line and exit 2, never a traceback.

A POSIX argument is bytes; Python decodes it with ``surrogateescape``, so an argument that
is not valid UTF-8 arrives as a string that cannot be encoded again. The prompt and the
system prompt must be refused where they are read, as invalid UTF-8 on stdin already is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.cli import assert_clean_error


def _run(*args: str | bytes | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ponder", *(a if isinstance(a, bytes) else str(a) for a in args)],
        env=env,
        input=b"",
        capture_output=True,
        timeout=120,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def test_a_prompt_argument_that_is_not_utf8(gemma_path: Path, ponder_env: dict[str, str]) -> None:
    result = _run("run", gemma_path, b"caf\xe9", env=ponder_env)
    assert_clean_error(result, 2, "the prompt is not valid UTF-8 (byte 0xe9 at offset 3)")


def test_a_later_prompt_word_names_its_offset(gemma_path: Path, ponder_env: dict[str, str]) -> None:
    result = _run("run", gemma_path, "au", b"lait \xff", env=ponder_env)
    assert_clean_error(result, 2, "the prompt is not valid UTF-8 (byte 0xff at offset 8)")


def test_a_system_prompt_that_is_not_utf8(gemma_path: Path, ponder_env: dict[str, str]) -> None:
    result = _run("run", gemma_path, "--system", b"\xc3(", "hi", env=ponder_env)
    assert_clean_error(result, 2, "--system is not valid UTF-8 (byte 0xc3 at offset 0)")
