"""The PyInstaller one-folder build from packaging/pyinstaller/ponder.spec, run as a user runs it.

Built once per session (~2 min on 2 cores) from the running environment, whose
llama-cpp-python was built with GGML_NATIVE=OFF (the README's test command). The binary
runs with a clean environment (no PYTHONPATH, no virtual environment) so it can only use
what it bundles: `--version`, `doctor --json`, a headless `run` on the real Gemma GGUF,
and the chat UI started and quit (Ctrl+Q) in a pseudo-terminal. The folder's size is
printed and held to a budget.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging
ROOT = Path(__file__).parents[2]
SIZE_BUDGET = 200 * 1000 * 1000  # bytes; measured 170 MB here (llama.cpp CPU, Textual, numpy)


@pytest.fixture(scope="session")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pyinstaller")
    result = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
         "--distpath", str(out / "dist"), "--workpath", str(out / "build"),
         str(ROOT / "packaging" / "pyinstaller" / "ponder.spec")],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT / "app")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    exe = out / "dist" / "ponder" / "ponder"
    assert exe.is_file()
    return exe


def _env(home: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, "PONDER_HOME": str(home), "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}


def test_the_folder_fits_its_size_budget(binary: Path) -> None:
    files = [p for p in binary.parent.rglob("*") if p.is_file() and not p.is_symlink()]
    size = sum(p.stat().st_size for p in files)
    print(f"\nPyInstaller folder: {size / 1e6:.0f} MB (budget {SIZE_BUDGET / 1e6:.0f} MB)")
    assert size <= SIZE_BUDGET


def test_the_binary_answers_version_and_doctor_json(binary: Path, tmp_path: Path) -> None:
    version = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, env=_env(tmp_path)
    )
    assert version.returncode == 0 and version.stdout.strip() == "ponder 0.1.0", version.stderr
    doctor = subprocess.run(
        [binary, "doctor", "--json"], capture_output=True, text=True, env=_env(tmp_path)
    )
    assert doctor.returncode == 0, doctor.stderr
    data = json.loads(doctor.stdout)
    assert data["llama_cpp"]["error"] is None  # the bundled llama.cpp loads
    assert any(d["name"] == "CPU" for d in data["llama_cpp"]["devices"])


@pytest.mark.real_model
def test_the_binary_runs_the_real_model_headless(
    binary: Path, gemma_path: Path, grammars: dict[str, Path], tmp_path: Path
) -> None:
    result = subprocess.run(
        [binary, "run", str(gemma_path), "--grammar", str(grammars["think"]),
         "--max-tokens", "48", "--ctx", "4096", "--json", "What is 2+2?"],
        capture_output=True, text=True, env=_env(tmp_path), timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["reasoning"] and reply["finish_reason"] in ("stop", "length")
    assert reply["chat_id"] is not None  # saved in the history, as the installed app does


def test_the_chat_ui_starts_and_quits_in_a_terminal(binary: Path, tmp_path: Path) -> None:
    main, child = os.openpty()
    env = {**_env(tmp_path), "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    env.pop("NO_COLOR")
    proc = subprocess.Popen([binary], stdin=child, stdout=child, stderr=child, env=env)
    os.close(child)
    seen = b""
    deadline = time.monotonic() + 120
    try:
        while b"\x1b[?1049h" not in seen or len(seen) < 2000:  # the alternate screen, drawn
            assert time.monotonic() < deadline, f"no screen after 120 s: {seen[-500:]!r}"
            if select.select([main], [], [], 1)[0]:
                seen += os.read(main, 65536)
        time.sleep(2)
        os.write(main, b"\x11")  # Ctrl+Q
        end = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < end:
            if select.select([main], [], [], 0.5)[0]:
                try:
                    seen += os.read(main, 65536)
                except OSError:
                    break
        assert proc.wait(timeout=30) == 0
        assert b"Traceback" not in seen
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
