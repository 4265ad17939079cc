"""`ponder setup --backend` for real: pip installs into a scratch environment, the new build
is checked in a fresh process, and a build that fails its check is rolled back.

The abetlen wheel indexes cannot be reached from CI, so the "new" build is the CPU wheel pip
cached when the test environment was built (tests/support/wheels.py), given with
``--wheels DIR`` (``--no-index --find-links``, binary only: never a source build), or a tiny
wheel of the pinned version whose import fails as a CUDA wheel does without the CUDA
runtime. The scratch environment borrows every other package from the running one, so the
real environment is never touched.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from support.wheels import broken_wheel, cached_llama_wheel, scratch_env

pytestmark = pytest.mark.packaging
APP = Path(__file__).parents[2] / "app"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    cached_llama_wheel(folder)
    return folder


@pytest.fixture()
def scratch(tmp_path: Path, wheels: Path) -> Path:
    """A scratch venv whose llama-cpp-python is the cached CPU wheel (the "old" build)."""
    python = scratch_env(tmp_path)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--find-links",
         str(wheels), "--only-binary", "llama-cpp-python", "llama-cpp-python"],
        check=True, capture_output=True,
    )  # fmt: skip
    return python


def _setup(python: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`ponder setup ARGS` run by the scratch env's python; its backups go in ../tmp."""
    tmp = python.parents[2] / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**env, "PYTHONPATH": str(APP), "TMPDIR": str(tmp)}
    return subprocess.run(
        [str(python), "-m", "ponder", "setup", "--yes", "--no-pull", *args],
        capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _init_digest(python: Path) -> str:
    code = "import importlib.util as u; print(u.find_spec('llama_cpp').origin)"
    origin = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    path = Path(origin.stdout.strip())
    assert str(path).startswith(str(python.parent.parent)), path  # the scratch env's own copy
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _offloads_check(python: Path) -> str:
    code = "import llama_cpp; print(llama_cpp.llama_supports_gpu_offload())"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout


def test_setup_installs_the_backend_and_checks_it_in_a_fresh_process(
    scratch: Path, wheels: Path, ponder_env: dict[str, str]
) -> None:
    result = _setup(
        scratch, "--backend", "cpu", "--reinstall", "--wheels", str(wheels), env=ponder_env
    )
    assert result.returncode == 0, result.stderr
    assert f"the virtual environment at {scratch.parent.parent}" in result.stdout
    assert "--only-binary llama-cpp-python --no-index --find-links" in result.stdout
    assert "checked in a fresh process: llama-cpp-python 0.3.36 offloads to the CPU only" in (
        result.stdout
    )
    assert "not downloading" in result.stdout
    assert _offloads_check(scratch).strip() == "False"  # the new build imports and answers


@pytest.mark.parametrize(
    ("backend", "new_build"),
    [("cpu", "broken"), ("vulkan", "cpu")],
    ids=["new-build-does-not-import", "new-build-does-not-offload"],
)
def test_a_build_that_fails_its_check_is_rolled_back(
    scratch: Path,
    wheels: Path,
    tmp_path: Path,
    ponder_env: dict[str, str],
    backend: str,
    new_build: str,
) -> None:
    before = _init_digest(scratch)
    folder = wheels
    if new_build == "broken":
        folder = tmp_path / "broken"
        broken_wheel(folder, "libcudart.so.12: cannot open shared object file")
    result = _setup(
        scratch, "--backend", backend, "--reinstall", "--wheels", str(folder), env=ponder_env
    )
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ponder: error: the ") and "failed its check" in last
    assert "put the previous build back (llama-cpp-python 0.3.36 offloads to the CPU only)" in last
    assert "build it from source instead: CMAKE_ARGS=" in last
    assert "Traceback" not in result.stderr
    if new_build == "broken":
        assert "libcudart.so.12" in last
    assert _init_digest(scratch) == before  # the old build's bytes are back
    assert _offloads_check(scratch).strip() == "False"
    assert list((tmp_path / "tmp").glob("ponder-llama-backup-*")) == []  # restored: cleaned up
