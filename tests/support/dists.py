"""The project's wheel and sdist, built once per test session and shared by every test.

Import it into a test module (``from support.dists import build_dists``; its name is ``dists``). The
build (``python -m build``, ~20 s) runs the first time any module asks; later ones reuse
it, whichever module they are in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
_BUILT: dict[str, Path] = {}


@pytest.fixture(scope="session", name="dists")
def build_dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not _BUILT:
        out = tmp_path_factory.mktemp("dist")
        result = subprocess.run(
            [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        [_BUILT["wheel"]] = out.glob("*.whl")
        [_BUILT["sdist"]] = out.glob("*.tar.gz")
    return dict(_BUILT)
