"""A full disk, as a user meets it: one line, what was kept, what to do; never a traceback.

A file-size limit stands in for the full disk (``support.limited``: ``RLIMIT_FSIZE`` with
SIGXFSZ ignored), so these run without root or a tmpfs, deterministically: a write that
would grow a file past the limit fails with EFBIG, or comes up short (SQLite then says
"database or disk is full"), as a full disk fails it with ENOSPC. ``ponder`` runs in a
child over the scripted engine; the files it leaves are then read without a limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import assert_clean_error
from support.fakehub import FakeHub

ROOT = Path(__file__).resolve().parents[2]
R1 = ("--chat-format", "deepseek-r1", "--reasoning", "hide")
ASIDE = "move the file aside"  # the advice for a damaged history, wrong for a full disk


@pytest.fixture()
def env(ponder_env: dict[str, str]) -> dict[str, str]:
    return {**ponder_env, "PYTHONPATH": os.pathsep.join([str(ROOT / "app"), str(ROOT / "tests")])}


def limited(
    *args: str | Path, env: dict[str, str], fsize: int | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    child = {**env, **extra}
    if fsize is not None:
        child["PONDER_FSIZE"] = str(fsize)
    result = subprocess.run(
        [sys.executable, "-m", "support.limited", *map(str, args)],
        env=child,
        input=b"",
        capture_output=True,
        timeout=300,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def test_no_save_runs_on_a_full_disk(gemma_path: Path, env: dict[str, str]) -> None:
    """Nothing to save, so nothing to fail: the load-settings cache is skipped quietly,
    and the history is not even opened."""
    result = limited("run", gemma_path, *R1, "--no-save", "hi", env=env, fsize=0)
    assert result.returncode == 0, result.stderr
    assert "391" in result.stdout and result.stderr == ""


def test_a_history_on_a_full_disk_is_not_called_damaged(
    gemma_path: Path, env: dict[str, str]
) -> None:
    assert limited("run", gemma_path, *R1, "hi", env=env).returncode == 0
    history = Path(env["PONDER_HOME"]) / "data" / "history.sqlite3"
    before = history.read_bytes()
    for args in (("run", gemma_path, *R1, "again"), ("chats", "list")):
        result = limited(*args, env=env, fsize=0)
        assert_clean_error(result, 1, "no room to write to the chat history")
        assert "the disk is full" in result.stderr and ASIDE not in result.stderr
    assert history.read_bytes() == before
    listed = limited("chats", "list", env=env)  # room again: all there
    assert listed.returncode == 0 and "hi" in listed.stdout


def test_the_disk_filling_during_a_reply_keeps_what_was_written(
    gemma_path: Path, env: dict[str, str]
) -> None:
    assert limited("run", gemma_path, *R1, "first", env=env).returncode == 0
    result = limited(
        "run",
        gemma_path,
        *R1,
        "second",
        env=env,
        fsize=100_000,  # the history is 40 KB; its WAL passes this a second into the reply
        PONDER_LOOPS="3000",
        PONDER_TOKENS_PER_S="2000",
    )
    assert_clean_error(result, 1, "no room to save the reply")
    assert "kept in chat 2" in result.stderr and "`ponder chats show 2`" in result.stderr
    shown = limited("chats", "show", "2", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "Okay, so I need to figure out" in shown.stdout  # the reasoning so far
    first = limited("chats", "show", "1", env=env)
    assert "391" in first.stdout  # the earlier chat untouched


def test_the_disk_filling_during_a_pull_keeps_the_partial_for_a_resume(
    fake_hub: FakeHub, env: dict[str, str]
) -> None:
    data = os.urandom(3 << 20)
    fake_hub.add_file("someone/Tiny-GGUF", "tiny-Q4_K_M.gguf", data)
    hub = {k: v for k, v in env.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    hub["HF_ENDPOINT"] = fake_hub.url
    ref = "hf:someone/Tiny-GGUF/tiny-Q4_K_M.gguf"
    result = limited("pull", ref, "--quiet", env=hub, fsize=1 << 20)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]  # after the pull's progress lines
    assert last.startswith("ponder: error: the disk is full: the download of")
    assert "the part already downloaded is kept" in last and f"`ponder pull {ref}`" in last
    partials = list((Path(env["PONDER_HOME"]) / "data" / "models" / ".partial").glob("*.part"))
    assert [p.stat().st_size for p in partials] == [1 << 20]
    resumed = limited("pull", ref, "--quiet", env=hub)
    assert resumed.returncode == 0, resumed.stderr
    assert limited("verify", ref, env=hub).returncode == 0
