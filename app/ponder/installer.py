"""Install a llama-cpp-python build into the environment Ponder runs from, or put it back.

``ponder setup`` uses this when the installed llama.cpp cannot use the machine's GPU.
The steps, each of which a user could get wrong by hand:

1. **Which environment.** Always ``sys.executable``'s, and it is named before anything
   runs: a virtual environment (pip's or uv's), or another Python, which is refused when
   it is marked externally managed (PEP 668) or when the installed llama-cpp-python lives
   outside it. Inside a uv tool environment, which has no pip, ``uv pip`` is used.
2. **The safe command** from :mod:`ponder.backends`: the exact pin, binary only.
3. **A backup** of every file the installed distribution's RECORD lists, copied aside
   before pip runs. pip cannot restore a previous build (its own rollback covers only a
   failed install, not a build that installs and then does not work), and the previous
   build may be a local compile that no index can give back, so this module keeps the
   bytes itself.
4. **A check in a fresh process**: the new build is imported by a new interpreter, which
   reports ``llama_supports_gpu_offload`` and ggml's device list (via
   :mod:`ponder.devices`); a crash or a missing library shows there, not in this process.
5. **Rollback** when pip fails or the check fails: the new distribution is uninstalled,
   the backed-up files go back, and the old build is checked again.

Nothing here imports llama.cpp: the checks run in child processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ponder import backends
from ponder.backends import Backend
from ponder.errors import PonderError

DIST = "llama_cpp_python"
CHECK_TIMEOUT_S = 180
Log = Callable[[str], None]

# Run by a fresh interpreter of the target environment; prints one JSON object.
_CHECK = r"""
import json, sys
out = {"ok": False}
try:
    from importlib.metadata import version
    out["version"] = version("llama_cpp_python")
    try:
        from ponder import devices
    except ImportError:
        sys.path.insert(0, sys.argv[1])
        from ponder import devices
    out["devices"] = [
        {"name": d.name, "description": d.description, "kind": d.kind,
         "free_bytes": d.free_bytes, "total_bytes": d.total_bytes}
        for d in devices.ggml_devices()
    ]
    out["gpu_offload"] = bool(devices.supports_gpu_offload())
    out["ok"] = True
except BaseException as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


@dataclass(frozen=True, slots=True)
class Environment:
    """The Python environment an install goes into, as the user should hear it named."""

    python: Path
    prefix: Path
    kind: str  # "virtual environment", "uv tool environment", "Python installation"
    tool: tuple[str, ...]  # the installer's argv prefix: (python, "-m", "pip") or (uv, "pip")
    refusal: str | None = None  # why Ponder will not install here

    @property
    def description(self) -> str:
        return f"the {self.kind} at {self.prefix} (Python {self.python})"


@dataclass(frozen=True, slots=True)
class BuildCheck:
    """What a fresh interpreter found when it imported llama.cpp."""

    ok: bool
    version: str | None = None
    gpu_offload: bool = False
    devices: tuple[dict[str, Any], ...] = ()
    error: str | None = None

    def serves(self, backend: Backend) -> bool:
        """The build loads, and offloads to ``backend``'s device (the CPU build: loads)."""
        if not self.ok:
            return False
        if backend.name == "cpu":
            return True
        names = [str(d.get("name", "")) for d in self.devices]
        return self.gpu_offload and any(n.startswith(backend.device_prefixes) for n in names)

    def summary(self) -> str:
        if not self.ok:
            return f"llama.cpp does not load: {self.error}"
        gpus = [d for d in self.devices if d.get("kind") in ("gpu", "igpu")]
        where = ", ".join(f"{d['name']} ({d['description']})" for d in gpus) or "the CPU only"
        return f"llama-cpp-python {self.version} offloads to {where}"


@dataclass(frozen=True, slots=True)
class InstallPlan:
    environment: Environment
    backend: Backend
    variant: str
    argv: tuple[str, ...]

    @property
    def command(self) -> str:
        return subprocess.list2cmdline(self.argv) if os.name == "nt" else _shell(self.argv)


@dataclass(slots=True)
class InstallResult:
    ok: bool
    check: BuildCheck
    rolled_back: bool = False
    restored: BuildCheck | None = None
    backup: Path | None = None  # kept when restoring failed
    log: list[str] = field(default_factory=list)


def _shell(argv: tuple[str, ...]) -> str:
    import shlex

    return shlex.join(argv)


def environment() -> Environment:
    """The environment this interpreter runs from, and the tool that installs there."""
    exe = Path(sys.executable)
    prefix = Path(sys.prefix)
    in_venv = sys.prefix != sys.base_prefix
    uv_tool = (prefix / "uv-receipt.toml").exists()  # written by `uv tool install`
    kind = "uv tool environment" if uv_tool else "virtual environment" if in_venv else ""
    kind = kind or ("conda environment" if (prefix / "conda-meta").is_dir() else "")
    kind = kind or "Python installation"
    refusal = None
    marker = Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED"
    if not in_venv and marker.exists():
        refusal = f"{prefix} is managed by the system's package manager (PEP 668)"
    return Environment(exe, prefix, kind, _installer(exe), refusal)


def _installer(exe: Path) -> tuple[str, ...]:
    probe = subprocess.run(
        [str(exe), "-m", "pip", "--version"], capture_output=True, text=True, check=False
    )
    if probe.returncode == 0:
        return (str(exe), "-m", "pip")
    uv = shutil.which("uv")
    if uv:
        return (uv, "pip")
    return ()


def unavailable(env: Environment) -> str | None:
    """Why nothing can be installed into ``env`` (None: it can)."""
    if env.refusal:
        return env.refusal
    if not env.tool:
        return "it has no pip, and uv is not on PATH"
    return None


def plan_install(
    backend: Backend, variant: str, *, find_links: str | None = None, env: Environment | None = None
) -> InstallPlan:
    """The exact command that would install ``variant``'s pinned wheel into ``env``."""
    env = env or environment()
    args = backends.pip_install_argv(variant, find_links=find_links)[1:]  # after "install"
    if env.tool and env.tool[-1] == "pip" and env.tool[0] != str(env.python):  # uv pip
        args = ["--python", str(env.python), *_uv_args(args)]
    tool = env.tool or (str(env.python), "-m", "pip")  # install() refuses: no pip, no uv
    return InstallPlan(env, backend, variant, (*tool, "install", *args))


def _uv_args(args: list[str]) -> list[str]:
    """uv pip spells pip's --force-reinstall as --reinstall-package."""
    out: list[str] = []
    for arg in args:
        out += ["--reinstall-package", backends.PACKAGE] if arg == "--force-reinstall" else [arg]
    return out


def check_build(python: Path | None = None) -> BuildCheck:
    """Import llama.cpp in a fresh interpreter and report what it can offload to."""
    ponder_root = str(Path(__file__).resolve().parent.parent)
    try:
        done = subprocess.run(
            [str(python or sys.executable), "-c", _CHECK, ponder_root],
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return BuildCheck(False, error=f"the check took over {CHECK_TIMEOUT_S} s")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        why = f"signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
        tail = done.stderr.strip().splitlines()[-1:] or [""]
        return BuildCheck(False, error=f"the check crashed ({why}) {tail[0]}".strip())
    data = json.loads(lines[-1])
    return BuildCheck(
        ok=bool(data.get("ok")),
        version=data.get("version"),
        gpu_offload=bool(data.get("gpu_offload")),
        devices=tuple(data.get("devices", ())),
        error=data.get("error"),
    )


def install(plan: InstallPlan, log: Log) -> InstallResult:
    """Back up the installed build, run the plan, check it; put the old build back on failure."""
    env = plan.environment
    if env.refusal:
        raise PonderError(
            f"not installing into {env.description}: {env.refusal}",
            hint="create a virtual environment for Ponder (or use `uv tool install`), "
            "or run the command yourself",
        )
    if not env.tool:
        raise PonderError(
            f"neither pip nor uv can install into {env.description}",
            hint=f"install pip there (`{env.python} -m ensurepip`), then run ponder setup again",
        )
    backup = Path(tempfile.mkdtemp(prefix="ponder-llama-backup-"))
    saved = _back_up(env, backup)
    log(f"backed up the current build ({len(saved)} files) to {backup}")
    result = InstallResult(ok=False, check=BuildCheck(False))
    done = _run(list(plan.argv), log)
    result.check = check_build(env.python) if done == 0 else BuildCheck(False, error="pip failed")
    if done == 0 and result.check.serves(plan.backend):
        result.ok = True
        shutil.rmtree(backup, ignore_errors=True)
        return result
    log("the new build failed its check: putting the previous build back")
    result.rolled_back = True
    if saved:
        _run([*env.tool, "uninstall", "-y", backends.PACKAGE], log)
        _restore(env, backup, saved)
    result.restored = check_build(env.python)
    if result.restored.ok or not saved:
        shutil.rmtree(backup, ignore_errors=True)
    else:
        result.backup = backup
    return result


def _run(argv: list[str], log: Log) -> int:
    log("$ " + _shell(tuple(argv)))
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        log("  " + line.rstrip())
    return proc.wait()


def _installed_files(env: Environment) -> list[Path]:
    """The installed distribution's files, each inside ``env``; [] when none is installed."""
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        return []
    files = [Path(os.path.abspath(str(f.locate()))) for f in dist.files or ()]
    prefix = Path(os.path.abspath(env.prefix))
    outside = [f for f in files if not f.is_relative_to(prefix)]
    if outside:
        raise PonderError(
            f"the installed llama-cpp-python ({outside[0]}) is outside {env.description}",
            hint="Ponder changes only the environment it runs from; reinstall it by hand",
        )
    return [f for f in files if f.exists() or f.is_symlink()]


def _back_up(env: Environment, backup: Path) -> list[Path]:
    saved = []
    prefix = Path(os.path.abspath(env.prefix))
    for path in _installed_files(env):
        rel = path.relative_to(prefix)
        (backup / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, backup / rel, follow_symlinks=False)
        saved.append(rel)
    return saved


def _restore(env: Environment, backup: Path, saved: list[Path]) -> None:
    prefix = Path(os.path.abspath(env.prefix))
    for rel in saved:
        target = prefix / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        shutil.copy2(backup / rel, target, follow_symlinks=False)
