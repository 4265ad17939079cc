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


# A sample of the generated corpus: two that once aborted or raised, and some the checks
# let through to llama.cpp (the preflight child, then the real load).
SAMPLE = (
    "gemma3.attention.layer_norm_rms_epsilon=-inf",
    "gemma3.context_length=2147483648",
    "gemma3.attention.head_count=0",
    "tokenizer.ggml.bos_token_id=4294967295",
    "flip-7",
)


def test_a_sample_of_the_generated_corpus_never_crashes(
    gemma_path: Path, layout: mutants.Layout, mutant: Path, ponder_env: dict[str, str]
) -> None:
    generated = dict(corpus.generated(layout))
    outcomes = []
    for name in SAMPLE:
        mutants.write(gemma_path, layout, generated[name], mutant)
        result = run(mutant, ponder_env)
        outcomes.append((name, result.returncode))
        assert result.returncode in (0, 4), (name, result.returncode, result.stderr[-600:])
        assert "Traceback" not in result.stderr, (name, result.stderr[-600:])
        if result.returncode == 4:
            lines = result.stderr.strip().splitlines()
            assert all(line.startswith("ponder: warning: ") for line in lines[:-1]), lines
            assert lines[-1].startswith("ponder: error: "), lines
    assert {code for _, code in outcomes} == {0, 4}, outcomes  # some ran, some were refused


def test_a_hostile_template_in_the_gguf_is_exit_4_and_in_a_file_exit_2(
    gemma_path: Path, layout: mutants.Layout, mutant: Path, ponder_env: dict[str, str]
) -> None:
    bomb = "{% for i in range(99999) %}{{ 'y' * 99999 }}{% endfor %}"
    header = mutants.add_field(layout, "tokenizer.chat_template", corpus.string(bomb))
    mutants.write(gemma_path, layout, header, mutant)
    own = run(mutant, ponder_env)
    assert_clean_error(own, 4, "the model's own chat template (in its GGUF) could not be rendered")
    assert "--chat-format" in own.stderr and "--chat-template" in own.stderr
    template = mutant.with_name("t.jinja")
    template.write_text("{% include 'base.jinja' %}")
    users = run(gemma_path, ponder_env, "--chat-template", str(template))
    assert_clean_error(users, 2, "the --chat-template file could not be rendered")
