"""The built wheel and sdist installed as users install them: `uv tool install` and
`pipx install`, each into its own fresh environment, then `ponder --version`,
`ponder doctor --json` and a real `ponder run` on the Gemma GGUF.

llama-cpp-python comes from the wheel pip cached when the test environment was built
(tests/support/wheels.py) with a source build forbidden (`--no-build-package` for uv,
`--only-binary` for pip): it is never recompiled. Everything else comes from the package
registry. The installs go under the test's tmp folder (UV_TOOL_DIR, PIPX_HOME).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.dists import build_dists  # noqa: F401  (the shared "dists" fixture)
from support.wheels import cached_llama_wheel

pytestmark = pytest.mark.packaging
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def llama_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("llama-wheels")
    cached_llama_wheel(folder)
    return folder


def _clean_env(tmp: Path) -> dict[str, str]:
    keep = ("HOME", "LANG", "TMPDIR", "SSL_CERT_FILE", "PIP_CERT", "PIP_DEFAULT_TIMEOUT")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("UV_INDEX")}
    env.update(
        PATH=f"{tmp / 'bin'}:{BIN}:/usr/bin:/bin",
        PONDER_HOME=str(tmp / "home"),
        HF_HUB_OFFLINE="1",
        NO_COLOR="1",
        UV_TOOL_DIR=str(tmp / "uv-tools"),
        UV_TOOL_BIN_DIR=str(tmp / "bin"),
        PIPX_HOME=str(tmp / "pipx"),
        PIPX_BIN_DIR=str(tmp / "bin"),
    )
    return env


def _install(tool: str, dist: Path, wheels: Path, env: dict[str, str]) -> None:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if tool == "uv":
        argv = [
            str(BIN / "uv"),
            "tool",
            "install",
            str(dist),
            "--python",
            python,
            "--find-links",
            str(wheels),
            "--no-build-package",
            "llama-cpp-python",
        ]
    else:
        argv = [
            str(BIN / "pipx"),
            "install",
            str(dist),
            "--python",
            sys.executable,
            "--pip-args",
            f"--find-links {wheels} --only-binary llama-cpp-python",
        ]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.real_model
@pytest.mark.parametrize(
    ("tool", "kind"),
    [("uv", "wheel"), ("uv", "sdist"), ("pipx", "wheel"), ("pipx", "sdist")],
)
def test_install_then_version_doctor_and_a_real_run(
    tool: str,
    kind: str,
    dists: dict[str, Path],
    llama_wheels: Path,
    gemma_path: Path,
    grammars: dict[str, Path],
    tmp_path: Path,
) -> None:
    env = _clean_env(tmp_path)
    _install(tool, dists[kind], llama_wheels, env)
    ponder = tmp_path / "bin" / "ponder"
    version = subprocess.run([ponder, "--version"], capture_output=True, text=True, env=env)
    assert version.stdout.strip() == "ponder 0.1.0", version.stderr
    doctor = subprocess.run([ponder, "doctor", "--json"], capture_output=True, text=True, env=env)
    assert doctor.returncode == 0, doctor.stderr
    data = json.loads(doctor.stdout)
    assert data["llama_cpp"]["error"] is None and data["llama_cpp"]["backend"] == "cpu"
    run = subprocess.run(
        [ponder, "run", str(gemma_path), "--grammar", str(grammars["think"]), "--ctx", "4096",
         "--max-tokens", "48", "--json", "What is 2+2?"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    reply = json.loads(run.stdout)
    assert reply["reasoning"] and reply["finish_reason"] in ("stop", "length")
    if tool == "uv" and kind == "wheel":
        # The uv tool environment has no pip: ponder setup installs with `uv pip --python`.
        setup = subprocess.run(
            [ponder, "setup", "--backend", "cpu", "--reinstall", "--wheels", str(llama_wheels),
             "--yes", "--no-pull"],
            capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert setup.returncode == 0, setup.stderr
        assert "the uv tool environment at" in setup.stdout
        assert "uv pip install --python" in setup.stdout
        assert "checked in a fresh process: llama-cpp-python 0.3.36" in setup.stdout
