"""Write the packaging files' generated parts from their sources, or check them (--check).

- ``install.sh`` and ``backends.md``: the llama-cpp-python pin and the backend table, from
  ``app/ponder/backends.py`` (the one source of truth ``ponder doctor`` and ``setup`` use).
- ``homebrew/ponder.rb``: one ``resource`` per dependency of the locked set (``uv.lock``,
  exported by ``uv export --frozen``, offline) that applies on macOS arm64 with Python
  3.13, each with the sdist URL and sha256 the lock records (the pure-Python wheel when a
  release has no sdist), and the project's version from pyproject.toml.

Run from the repository root: ``python packaging/sync.py`` (rewrite) or ``--check`` (exit 1
and name the stale file). ``--sdist dist/ponder-X.tar.gz`` also fills in the formula's
own url and sha256 for a release. Needs no network.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.markers import Marker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "app"))

from ponder import backends  # noqa: E402

PACKAGING = ROOT / "packaging"
BEGIN, END = "<!-- generated from ponder.backends -->", "<!-- end of generated table -->"
SH_BEGIN, SH_END = "# --- generated from ponder.backends", "# --- end of generated values ---"
# Homebrew provides these as formulae (prebuilt), not as resources built from source.
BREW_FORMULAE = {"numpy": "numpy"}
PLACEHOLDER_SHA = "0" * 64


def _between(text: str, begin: str, end: str, body: str) -> str:
    start = text.index(begin)
    start = text.index("\n", start) + 1
    stop = text.index(end)
    return text[:start] + body + text[stop:]


def install_sh_values() -> str:
    variants = " ".join(
        f"{v.tag}:{'.'.join(map(str, v.linux_driver))}:{v.cuda}" for v in backends.CUDA_VARIANTS
    )
    return (
        f'PIN="{backends.LLAMA_CPP_PIN}"\n'
        f'INDEX="{backends.WHEEL_INDEX}"\n'
        f'CUDA_VARIANTS="{variants}"\n'
        f'BLACKWELL_MIN_CUDA="{backends.BLACKWELL_MIN_CUDA}"\n'
    )


def backends_table() -> str:
    rows = [
        f"llama-cpp-python pin: **{backends.LLAMA_CPP_PIN}**; wheel indexes under "
        f"`{backends.WHEEL_INDEX}/<variant>`.",
        "",
        "| backend | variants (newest first) | runs on | install into Ponder's environment |",
        "|---|---|---|---|",
    ]
    for b in backends.BACKENDS:
        variants = ", ".join(f"`{v}`" for v in b.variants)
        rows.append(
            f"| `{b.name}` ({b.label}) | {variants} | {b.platforms} | "
            f"`{backends.pip_install(b.variants[0])}` |"
        )
    rows += [
        "",
        "| CUDA wheel | CUDA | oldest Linux driver | oldest Windows driver |",
        "|---|---|---|---|",
    ]
    for v in backends.CUDA_VARIANTS:
        linux, windows = ".".join(map(str, v.linux_driver)), ".".join(map(str, v.windows_driver))
        rows.append(f"| `{v.tag}` | {v.cuda} | {linux} | {windows} |")
    rows += ["", "Source builds (no wheel fits), with the flag each backend needs:", ""]
    rows += [f"- `{b.name}`: `{backends.source_build(b.cmake_flag)}`" for b in backends.BACKENDS]
    rows += ["", "A new install as a uv tool (what `install.sh` runs):", ""]
    rows += [
        f"- `{b.name}`: `{backends.uv_tool_install(b.variants[0])}`" for b in backends.BACKENDS
    ]
    return "\n".join(rows) + "\n"


MACOS_ARM64 = {
    "sys_platform": "darwin",
    "platform_system": "Darwin",
    "platform_machine": "arm64",
    "os_name": "posix",
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def locked_requirements() -> list[tuple[str, str]]:
    """The runtime dependencies uv.lock pins that apply on macOS arm64, Python 3.13."""
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    argv = [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes"]
    argv += ["--no-header", "--no-annotate", "--format", "requirements-txt"]
    text = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    pairs = []
    for line in text.splitlines():
        if not line or line.startswith(("#", "-")):
            continue
        requirement, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(MACOS_ARM64):
            continue
        name, version = requirement.split("==")
        pairs.append((name.strip().lower(), version.strip()))
    return pairs


def lock_sdists() -> dict[tuple[str, str], tuple[str, str]]:
    """(name, version) -> the sdist's (url, sha256), else the pure-Python wheel's."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    out = {}
    for package in lock["package"]:
        files = [package.get("sdist") or {}]
        files += [w for w in package.get("wheels", []) if w["url"].endswith("-none-any.whl")]
        for found in files:
            if "url" in found:
                key = (package["name"].lower(), package["version"])
                out[key] = (found["url"], found["hash"].removeprefix("sha256:"))
                break
    return out


def formula(sdist: Path | None = None) -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    version = project["version"]
    sdists = lock_sdists()
    url = (
        f"https://github.com/ponder-app/ponder/releases/download/v{version}/ponder-{version}.tar.gz"
    )
    sha = hashlib.sha256(sdist.read_bytes()).hexdigest() if sdist else PLACEHOLDER_SHA
    resources = []
    for name, pinned in locked_requirements():
        if name in BREW_FORMULAE:
            continue
        if (name, pinned) not in sdists:
            raise SystemExit(f"sync: {name}=={pinned} has no sdist in uv.lock: run `uv lock`")
        res_url, res_sha = sdists[(name, pinned)]
        resources.append(
            f'  resource "{name}" do\n    url "{res_url}"\n    sha256 "{res_sha}"\n  end\n'
        )
    deps = "\n".join(f'  depends_on "{f}"' for f in sorted(BREW_FORMULAE.values()))
    return f"""# Homebrew tap formula for Ponder, generated by packaging/sync.py: do not edit.
# Resources: the locked dependency set (uv.lock) that applies on macOS arm64, with the
# sdists the lock records. llama-cpp-python builds from source here, which on
# Apple Silicon enables Metal. For a release:
#   python packaging/sync.py --sdist dist/ponder-{version}.tar.gz
class Ponder < Formula
  include Language::Python::Virtualenv

  desc "Run distilled reasoning models locally, reasoning kept apart from the answer"
  homepage "https://github.com/ponder-app/ponder"
  url "{url}"
  sha256 "{sha}"
  license "MIT"

  depends_on "cmake" => :build
  depends_on "rust" => :build
  depends_on "python@3.13"
{deps}

{"".join(resources).rstrip()}

  def install
    ENV["CMAKE_ARGS"] = "-DGGML_NATIVE=OFF" unless Hardware::CPU.arm?
    virtualenv_install_with_resources
  end

  test do
    assert_match "ponder #{{version}}", shell_output("#{{bin}}/ponder --version")
    ENV["PONDER_HOME"] = testpath.to_s
    assert_match '"schema"', shell_output("#{{bin}}/ponder doctor --json")
  end
end
"""


def outputs(sdist: Path | None = None) -> dict[Path, str]:
    sh = PACKAGING / "install.sh"
    md = PACKAGING / "backends.md"
    return {
        sh: _between(sh.read_text(), SH_BEGIN, SH_END, install_sh_values()),
        md: _between(md.read_text(), BEGIN, END, backends_table()),
        PACKAGING / "homebrew" / "ponder.rb": formula(sdist),
    }


def stale(sdist: Path | None = None) -> list[Path]:
    return [p for p, text in outputs(sdist).items() if not p.exists() or p.read_text() != text]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("--sdist", type=Path, help="fill in the formula's url and sha256")
    args = parser.parse_args()
    if args.check:
        old = stale(args.sdist)
        for path in old:
            print(f"sync: {path.relative_to(ROOT)} is stale: run python packaging/sync.py")
        return 1 if old else 0
    for path, text in outputs(args.sdist).items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
