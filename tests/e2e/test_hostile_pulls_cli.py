"""`ponder pull / list / rm / verify` against hostile input, as a user sees it: one line,
the documented exit code, no traceback, and nothing written outside the model store.

In-process through ``main()`` with the loopback fake Hub (no llama.cpp, no real model),
except the Ctrl-C case, which needs a process to signal.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ponder.cli import main
from support.fakehub import FakeHub

REPO = "org/repo"
DATA = b"GGUF" + bytes(range(256)) * 4000


@dataclass
class Result:
    code: int
    out: str
    err: str

    def one_line(self, code: int, fragment: str) -> str:
        """The one error line on stderr (after at most the "pulling ..." line), checked
        against ``code``."""
        assert self.code == code, self.err
        assert "Traceback" not in self.err
        lines = [line for line in self.err.strip().splitlines() if " pulling " not in line]
        assert len(lines) == 1, self.err
        assert lines[0].startswith("ponder: error: ") and fragment in lines[0], lines[0]
        return lines[0]


@pytest.fixture()
def ponder(
    fake_hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Result]:
    """`ponder ARGS` in-process, pointed at the fake Hub."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def _models(ponder_home: Path) -> Path:
    return ponder_home / "data" / "models"


def _outside(tmp_path: Path, ponder_home: Path) -> list[Path]:
    store = _models(ponder_home).resolve()
    return [p for p in tmp_path.rglob("*.gguf") if not p.resolve().is_relative_to(store)]


@pytest.mark.parametrize(
    "ref",
    [
        "hf:org/repo/../../../../../escape.gguf",  # from <models>/org/repo to tmp_path
        "hf:org/repo/sub/../../../../../../escape.gguf",
        "hf:org/..",
        "hf:x/../escape.gguf",
    ],
)
def test_a_climbing_ref_is_exit_2_and_writes_nothing(
    ponder: Callable[..., Result],
    fake_hub: FakeHub,
    tmp_path: Path,
    ponder_home: Path,
    ref: str,
) -> None:
    fake_hub.add_file(REPO, "../../../../../escape.gguf", DATA, hostile=True)
    fake_hub.add_file(REPO, "sub/../../../../../../escape.gguf", DATA, hostile=True)
    ponder("pull", ref).one_line(2, "not a")
    assert _outside(tmp_path, ponder_home) == []
    assert fake_hub.requests == []


def test_a_hostile_listing_is_exit_1_and_writes_nothing(
    ponder: Callable[..., Result], fake_hub: FakeHub, tmp_path: Path, ponder_home: Path
) -> None:
    fake_hub.add_file(REPO, "../../../../../escape-Q4_K_M.gguf", DATA, hostile=True)
    ponder("pull", f"hf:{REPO}:Q4_K_M").one_line(1, "not a plain path inside the repo")
    assert _outside(tmp_path, ponder_home) == []


def test_an_unverifiable_file_needs_allow_unverified_and_is_listed_so(
    ponder: Callable[..., Result], fake_hub: FakeHub
) -> None:
    fake_hub.add_file(REPO, "plain.gguf", DATA, lfs=False)
    ref = f"hf:{REPO}/plain.gguf"
    line = ponder("pull", ref).one_line(1, "cannot be verified")
    assert f"ponder pull --allow-unverified {ref}" in line
    assert json.loads(ponder("list", "--json").out) == []
    taken = ponder("pull", "--allow-unverified", "--quiet", ref)
    assert taken.code == 0, taken.err
    assert "is unverified" in taken.err
    (row,) = json.loads(ponder("list", "--json").out)
    assert row["name"] == ref and row["verified"] is False
    assert "UNVERIFIED" in ponder("list").out
    checked = ponder("verify", ref)
    assert checked.code == 0 and "unverified" in checked.out


def test_a_verified_pull_is_listed_verified(
    ponder: Callable[..., Result], fake_hub: FakeHub
) -> None:
    fake_hub.add_file(REPO, "m.gguf", DATA)
    assert ponder("pull", "--quiet", f"hf:{REPO}/m.gguf").code == 0
    (row,) = json.loads(ponder("list", "--json").out)
    assert row["verified"] is True
    assert "UNVERIFIED" not in ponder("list").out


def test_rm_leaves_a_file_outside_the_store_alone(
    ponder: Callable[..., Result], ponder_home: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "precious.gguf"
    victim.write_bytes(b"mine")
    models = _models(ponder_home)
    models.mkdir(parents=True)
    local = "../../../precious.gguf"  # <models>/../../.. is tmp_path
    stored = {"repo_path": "x.gguf", "local": local, "size": 4, "sha256": "0" * 64}
    entry = {"name": "evil", "files": [stored]}
    (models / "manifest.json").write_text(json.dumps({"version": 1, "models": [entry]}))
    removed = ponder("rm", "evil", "--yes")
    assert removed.code == 0, removed.err
    assert "outside the model store" in removed.err
    assert victim.read_bytes() == b"mine"
    assert json.loads(ponder("list", "--json").out) == []


@pytest.mark.parametrize("where", ["file", "env"])
def test_an_empty_models_dir_is_refused_not_the_current_folder(
    ponder: Callable[..., Result],
    ponder_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    where: str,
) -> None:
    if where == "file":
        (ponder_home / "config").mkdir(parents=True)
        (ponder_home / "config" / "config.toml").write_text('models_dir = ""\n')
    else:
        monkeypatch.setenv("PONDER_MODELS_DIR", "")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    ponder("list").one_line(1, "models_dir")
    ponder("pull", "hf:org/repo/m.gguf").one_line(1, "models_dir")
    assert list(cwd.iterdir()) == []


def test_an_unknown_name_points_to_ponder_catalog(ponder: Callable[..., Result]) -> None:
    line = ponder("pull", "zzzzzz").one_line(3, "unknown model")
    assert "`ponder catalog`" in line and "`ponder list`" not in line


def test_a_ctrl_c_pull_says_interrupted_not_error(
    fake_hub: FakeHub, ponder_env: dict[str, str], ponder_home: Path
) -> None:
    fake_hub.add_file(REPO, "m.gguf", DATA * 4)
    fake_hub.throttle(400_000)
    env = dict(ponder_env, HF_ENDPOINT=fake_hub.url)
    env.pop("HF_HUB_OFFLINE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ponder", "pull", "--quiet", f"hf:{REPO}/m.gguf"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    partial_dir = _models(ponder_home) / ".partial"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        parts = list(partial_dir.glob("*.part"))
        if parts and parts[0].stat().st_size > 100_000:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("the download never got going")
    proc.send_signal(signal.SIGINT)
    _, err_bytes = proc.communicate(timeout=60)
    err = err_bytes.decode()
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ponder: interrupted") and "partial file is kept" in last, err
    assert "error" not in err and "Traceback" not in err
