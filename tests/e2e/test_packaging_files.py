"""packaging/'s artefacts, checked offline: the wheel and sdist, the Homebrew formula, the
Dockerfiles and install.sh, and that every copy of the pin and backend table is current.

The wheel and sdist are built once per session (`python -m build`, ~20 s) and shared with
tests/e2e/test_packaging_installs.py. System tools (ruby, shellcheck) come from `.ci/run`;
in CI a missing one fails the test, it never skips.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from ponder import backends
from support.dists import build_dists  # noqa: F401  (the shared "dists" fixture)

pytestmark = pytest.mark.packaging
ROOT = Path(__file__).parents[2]
PACKAGING = ROOT / "packaging"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if found is None:
        message = f"{name} is not installed (.ci/run installs it: apt-get install {name})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _sync() -> object:
    spec = importlib.util.spec_from_file_location("packaging_sync", PACKAGING / "sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_backends_md_install_sh_and_the_formula_match_their_sources() -> None:
    """One source of truth: ponder.backends (and uv.lock); sync.py writes every copy."""
    sync = _sync()
    assert sync.stale() == []  # type: ignore[attr-defined]
    md = (PACKAGING / "backends.md").read_text()
    sh = (PACKAGING / "install.sh").read_text()
    assert f"**{backends.LLAMA_CPP_PIN}**" in md and f'PIN="{backends.LLAMA_CPP_PIN}"' in sh
    for b in backends.BACKENDS:
        assert f"`{b.name}` ({b.label})" in md
        assert backends.pip_install(b.variants[0]) in md


# ---------------------------------------------------------------- wheel and sdist


def test_the_wheel_and_sdist_pass_twine_and_check_wheel_contents(dists: dict[str, Path]) -> None:
    twine = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists["wheel"]),
         str(dists["sdist"])],
        capture_output=True, text=True,
    )  # fmt: skip
    assert twine.returncode == 0, twine.stdout + twine.stderr
    cwc = subprocess.run(
        [_tool("check-wheel-contents"), str(dists["wheel"])], capture_output=True, text=True
    )
    assert cwc.returncode == 0, cwc.stdout + cwc.stderr


def test_the_wheel_holds_the_catalog_and_styles_and_nothing_from_tests(
    dists: dict[str, Path],
) -> None:
    names = zipfile.ZipFile(dists["wheel"]).namelist()
    assert "ponder/models.toml" in names
    shipped_tcss = {n for n in names if n.endswith(".tcss")}
    source_tcss = {
        "ponder/" + str(p.relative_to(ROOT / "app" / "ponder")) for p in ROOT.glob("app/**/*.tcss")
    }
    assert source_tcss and shipped_tcss == source_tcss
    assert not [n for n in names if n.startswith(("tests/", "support/", "bench/", "packaging/"))]
    assert "ponder/backends.py" in names and "ponder/installer.py" in names
    with tarfile.open(dists["sdist"]) as sdist:
        assert any(n.endswith("/models.toml") for n in sdist.getnames())


# ---------------------------------------------------------------- Homebrew formula


def test_the_formula_is_valid_ruby_and_matches_the_project() -> None:
    formula = PACKAGING / "homebrew" / "ponder.rb"
    ruby = subprocess.run([_tool("ruby"), "-c", str(formula)], capture_output=True, text=True)
    assert ruby.returncode == 0 and "Syntax OK" in ruby.stdout, ruby.stderr
    text = formula.read_text()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"/v{version}/ponder-{version}.tar.gz" in text
    assert "include Language::Python::Virtualenv" in text and "test do" in text
    resources = dict(re.findall(r'resource "([^"]+)" do\n\s+url "([^"]+)"', text))
    locked = dict(_sync().locked_requirements())  # type: ignore[attr-defined]
    assert set(resources) == set(locked) - {"numpy"}  # numpy: Homebrew's own formula
    for name, url in resources.items():
        assert f"-{locked[name]}" in url, (name, url)
    assert f"-{backends.LLAMA_CPP_PIN}.tar.gz" in resources["llama-cpp-python"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in project["dependencies"]}
    assert direct <= set(locked)


# ---------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_the_dockerfiles_pass_hadolint(name: str) -> None:
    folder = PACKAGING / "docker"
    result = subprocess.run(
        [_tool("hadolint"), "-c", str(folder / ".hadolint.yaml"), str(folder / name)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    text = (folder / name).read_text()
    assert 'ENTRYPOINT ["ponder"]' in text and 'VOLUME ["/data"]' in text
    assert "PONDER_HOME=/data" in text and "-DGGML_NATIVE=OFF" in text
    assert f"llama-cpp-python=={backends.LLAMA_CPP_PIN}" in text
    if name.endswith(".cuda"):
        assert "-DCMAKE_CUDA_ARCHITECTURES=" in text and text.count("FROM ") == 2


# ---------------------------------------------------------------- install.sh


def test_install_sh_passes_shellcheck() -> None:
    result = subprocess.run(
        [_tool("shellcheck"), str(PACKAGING / "install.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def _fake(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


# machine kind -> (uname -s, uname -m, nvidia-smi's answer or None, expected variant)
MACHINES = {
    "apple-silicon": ("Darwin", "arm64", None, "metal"),
    "intel-mac": ("Darwin", "x86_64", None, "cpu"),
    "linux-rtx3060-driver-550": ("Linux", "x86_64", "550.90.07, NVIDIA GeForce RTX 3060", "cu124"),
    "linux-rtx3090-driver-535": ("Linux", "x86_64", "535.183.01, NVIDIA GeForce RTX 3090", "cu122"),
    "linux-rtx5090-driver-575": ("Linux", "x86_64", "575.51.03, NVIDIA GeForce RTX 5090", "cpu"),
    "linux-rtx5090-driver-580": ("Linux", "x86_64", "580.65.06, NVIDIA GeForce RTX 5090", "cu130"),
    "linux-old-driver": ("Linux", "x86_64", "470.82.01, NVIDIA GeForce GTX 1080", "cpu"),
    "linux-broken-driver": ("Linux", "x86_64", "", "cpu"),
    "linux-no-gpu": ("Linux", "x86_64", None, "cpu"),
}


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_install_sh_dry_run_picks_the_wheel_for_each_machine_kind(
    kind: str, tmp_path: Path
) -> None:
    system, machine, nvidia, variant = MACHINES[kind]
    fakes = tmp_path / "bin"
    fakes.mkdir()
    _fake(fakes, "uname", f'[ "$1" = -m ] && echo {machine} || echo {system}\n')
    if nvidia is not None:
        answer = f"echo '{nvidia}'" if nvidia else "echo 'NVIDIA-SMI has failed' >&2; exit 9"
        _fake(fakes, "nvidia-smi", answer + "\n")
    path = f"{fakes}:/usr/bin:/bin"
    result = subprocess.run(
        ["sh", str(PACKAGING / "install.sh"), "--dry-run"],
        capture_output=True, text=True, env={"PATH": path},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == backends.uv_tool_install(variant)
    if nvidia:  # the shell and Python agree on the CUDA wheel for this driver
        driver, name = nvidia.split(", ")
        blackwell = "5090" in name
        assert (backends.cuda_variant(driver, "Linux", blackwell) or "cpu") == variant
