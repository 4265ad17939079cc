"""llama-cpp-python wheels for the packaging tests, without compiling or reaching an index.

- :func:`cached_llama_wheel`: the wheel pip built when the test environment was installed
  (the README's test command compiles llama-cpp-python once; pip keeps the wheel in its
  cache, ``pip cache list llama_cpp_python``). Installing it takes seconds; a source build
  would take ~10 minutes, so no test may trigger one (always ``--only-binary`` /
  ``--no-build-package`` with ``--find-links`` to the folder this returns).
- :func:`broken_wheel`: a tiny wheel of the pinned version whose import fails the way a
  CUDA wheel does on a machine without the CUDA runtime, for the rollback test.
- :func:`scratch_env`: a fresh virtual environment that borrows every package of the
  running one except llama-cpp-python, so installing into it never touches the real one.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

from ponder.backends import LLAMA_CPP_PIN

WHEEL = f"llama_cpp_python-{LLAMA_CPP_PIN}"


def cached_llama_wheel(folder: Path) -> Path:
    """Copy the pinned llama-cpp-python wheel from pip's cache into ``folder``; fail if none."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "list", "--format=abspath", "llama_cpp_python"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    found = [Path(p) for p in listed if Path(p).name.startswith(WHEEL + "-")]
    assert found, (
        f"no {WHEEL} wheel in pip's cache ({listed}); install the test environment with the "
        "README's test command, which builds it once (pip keeps the wheel)"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(found[0], folder / found[0].name))


def broken_wheel(folder: Path, error: str) -> Path:
    """A llama-cpp-python wheel of the pinned version whose ``import llama_cpp`` raises."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{WHEEL}.dist-info"
    files = {
        "llama_cpp/__init__.py": f"raise ImportError({error!r})\n",
        f"{dist}/METADATA": (
            f"Metadata-Version: 2.1\nName: llama_cpp_python\nVersion: {LLAMA_CPP_PIN}\n"
        ),
        f"{dist}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: ponder-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    path = folder / f"{WHEEL}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return path


def scratch_env(root: Path) -> Path:
    """A venv (with pip) that sees the running environment's packages but llama-cpp-python.

    The running environment's site-packages entries are linked into ``root/borrowed``
    (all but llama_cpp and the headers and libraries its wheel installs), which a ``.pth``
    file puts on the scratch venv's path after its own site-packages. Returns its python.
    """
    venv.create(root / "env", with_pip=True)
    python = root / "env" / "bin" / "python"
    borrowed = root / "borrowed"
    borrowed.mkdir()
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        if entry.name in ("include", "lib", "bin") or entry.suffix == ".pth":
            continue
        if entry.name.startswith(("llama_cpp", "__editable__")):
            continue
        os.symlink(entry, borrowed / entry.name)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "borrowed.pth").write_text(f"{borrowed}\n")
    return python
