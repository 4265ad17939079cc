"""Hostile GGUF files through `ponder run`, as a user would meet them: subprocesses.

The named mutations of the real Gemma 3 270M file each once took the process down:
SIGABRT inside llama.cpp with a backtrace on stderr, or a Python traceback (issue 13).
Now each ends in one line and exit 4. A sample of the generated corpus takes the same
path (the whole corpus goes through the in-process checks in test_gguf_sanity.py, which
is what keeps this file within its time). The copies are full files: llama.cpp reads
the tensor data of the ones the checks let through.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import gguf_corpus as corpus
from support import gguf_mutants as mutants
from support.cli import assert_clean_error

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def layout(gemma_path: Path) -> mutants.Layout:
    return mutants.layout(gemma_path)


@pytest.fixture()
def mutant(gemma_path: Path, layout: mutants.Layout, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "mutant.gguf"
    yield path
    path.unlink(missing_ok=True)  # 250 MB each: do not keep them to the end of the run


def run(path: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    from support.cli import ponder

    return ponder(
        "run", path, "--no-save", "--max-tokens", "2", "--ctx", "256", *extra, "hi", env=env
    )


@pytest.mark.parametrize("name", list(corpus.NAMED))
def test_named_crashers_end_in_one_line_and_exit_4(
    gemma_path: Path,
    layout: mutants.Layout,
    mutant: Path,
    ponder_env: dict[str, str],
    name: str,
) -> None:
    mutants.write(gemma_path, layout, corpus.NAMED[name](layout), mutant)
    result = run(mutant, ponder_env)
    assert result.returncode >= 0, f"killed by signal {-result.returncode}: {result.stderr[:400]}"
    assert_clean_error(result, 4, str(mutant))


def _gib(text: str) -> float:
    number, unit = text.split()
    return float(number.replace(",", "")) / (1024 if unit == "MiB" else 1)


def test_a_huge_trained_context_runs_within_its_printed_plan(
    gemma_path: Path, layout: mutants.Layout, mutant: Path, ponder_env: dict[str, str]
) -> None:
    """context_length = 2^31-1 ran, but peaked near 9 GB against a plan of 1.3 GiB:
    llama-cpp-python sized its tokenize buffer by the trained context (8 GiB of int32)."""
    header = mutants.set_value(layout, "gemma3.context_length", corpus.u32(2**31 - 1))
    mutants.write(gemma_path, layout, header, mutant)
    args = ["run", str(mutant), "--no-save", "-v", "--max-tokens", "2", "--ctx", "256", "hi"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ponder", *args],
        env=ponder_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read()  # a few lines: the pipe never fills
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, stderr
    planned = re.search(r"= ([\d.,]+ [GM]iB) of", stderr)
    assert planned, stderr
    peak_gib = usage.ru_maxrss / 2**20  # KiB on Linux
    assert peak_gib <= _gib(planned.group(1)), (peak_gib, planned.group(1))
