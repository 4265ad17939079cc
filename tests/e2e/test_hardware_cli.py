"""`ponder doctor / fit / setup` and automatic load planning, on this machine's real probes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ponder.catalog import load_catalog
from ponder.config import Settings
from ponder.engine import LlamaEngine, LoadParams
from ponder.errors import ModelLoadError
from ponder.events import Notice
from ponder.gguf_info import GGUFInfo
from ponder.history import History
from ponder.paths import default_paths
from ponder.session import ModelOptions, Session
from support.cli import ponder


def test_doctor_reports_this_machine(ponder_env: dict[str, str]) -> None:
    result = ponder("doctor", env=ponder_env)
    assert result.returncode == 0, result.stderr
    for heading in ("Hardware", "CPU", "RAM", "llama.cpp", "Findings"):
        assert heading in result.stdout
    assert "AVX" in result.stdout or "NEON" in result.stdout


def test_fit_ranks_the_catalog_before_any_download(ponder_env: dict[str, str]) -> None:
    result = ponder("fit", env=ponder_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["MODEL", "QUANT", "SIZE", "NEEDS", "VERDICT"]
    assert any(line.startswith("r1:1.5b") for line in lines)
    assert any(line.startswith("r1-llama:70b") and "too big" in line for line in lines)
    assert "free disk for models" in result.stdout


def test_fit_one_model_shows_its_plan(ponder_env: dict[str, str]) -> None:
    result = ponder("fit", "r1:1.5b", env=ponder_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("r1:1.5b@Q4_K_M: ")
    assert "plan: cpu, 0/29 layers on GPU, context 16,384" in result.stdout


def test_setup_recommends_and_asks_before_downloading(ponder_env: dict[str, str]) -> None:
    result = ponder("setup", env=ponder_env)
    assert result.returncode == 2
    assert "recommended: r1" in result.stdout and "plan: " in result.stdout
    assert "without asking" in result.stderr and "--yes" in result.stderr


def test_run_verbose_prints_the_plan(
    gemma_path: Path, ponder_env: dict[str, str], tmp_path: Path
) -> None:
    result = ponder(
        "run",
        gemma_path,
        "--verbose",
        "--max-tokens",
        "2",
        "--json",
        "--no-save",
        "hi",
        env=ponder_env,
    )
    assert result.returncode == 0, result.stderr
    assert "plan: cpu, 0/19 layers on GPU, context 16,384" in result.stderr
    assert "CPU      weights" in result.stderr
    assert json.loads(result.stdout)["finish_reason"] == "length"


def test_overrides_win(gemma_path: Path, ponder_env: dict[str, str]) -> None:
    result = ponder(
        "run",
        gemma_path,
        "--verbose",
        "--ctx",
        "8192",
        "--threads",
        "1",
        "--max-tokens",
        "2",
        "--no-save",
        "hi",
        env=ponder_env,
    )
    assert result.returncode == 0, result.stderr
    assert "context 8,192, 1 threads" in result.stderr


def test_out_of_memory_steps_down_and_remembers(gemma_path: Path, ponder_home: Path) -> None:
    """llama.cpp's own allocation failure, stood in for a context too big for this machine.

    A real out-of-memory load cannot be provoked safely here, so the loader wraps the real
    engine and refuses contexts above 8,192 the way llama.cpp reports it.
    """
    attempts: list[int] = []

    def tight_loader(info: GGUFInfo, params: LoadParams) -> LlamaEngine:
        attempts.append(params.n_ctx)
        if params.n_ctx > 8192:
            raise ModelLoadError(
                "llama.cpp could not load gemma: failed to allocate CPU buffer of size 999 MiB "
                "(out of memory)"
            )
        return LlamaEngine.load(info, params)

    paths = default_paths()
    notices: list[str] = []
    with History.open(paths.history_db) as history:
        session = Session(
            settings=Settings(),
            paths=paths,
            catalog=load_catalog(),
            history=history,
            load_engine=tight_loader,
        )
        spec = session.resolve(str(gemma_path))
        first = session.plan(spec, ModelOptions())
        assert first.n_ctx == 16384
        model = session.open_model(
            str(gemma_path),
            on_event=lambda e: notices.append(e.text) if isinstance(e, Notice) else None,
        )
        assert model.n_ctx == 8192
        assert attempts == [16384, 8192]
        assert "retrying with 0 GPU layers and a 8,192-token context" in notices[0]
        session.close()
        # The next load starts from what worked.
        again = session.plan(spec, ModelOptions())
        assert again.n_ctx == 8192
    remembered = json.loads((paths.data_dir / "load_settings.json").read_text())
    assert "8192" in json.dumps(remembered)


def test_a_load_failure_that_is_not_memory_is_not_retried(
    gemma_path: Path, ponder_home: Path
) -> None:
    attempts: list[int] = []

    def broken(info: GGUFInfo, params: LoadParams) -> LlamaEngine:
        attempts.append(params.n_ctx)
        raise ModelLoadError("llama.cpp could not load gemma: unknown model architecture")

    session = Session(
        settings=Settings(),
        paths=default_paths(),
        catalog=load_catalog(),
        history=None,
        load_engine=broken,
    )
    with pytest.raises(ModelLoadError, match="unknown model architecture"):
        session.open_model(str(gemma_path))
    assert attempts == [16384]
