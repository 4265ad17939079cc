"""`ponder doctor / fit / setup` and automatic load planning, on this machine's real probes."""

from __future__ import annotations

import json
import re
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
from support.cli import assert_clean_error, ponder


def test_doctor_reports_this_machine(ponder_env: dict[str, str]) -> None:
    result = ponder("doctor", env=ponder_env)
    assert result.returncode == 0, result.stderr
    for heading in ("Hardware", "CPU", "RAM", "llama.cpp", "Findings"):
        assert heading in result.stdout
    assert "AVX" in result.stdout or "NEON" in result.stdout


def test_fit_ranks_the_catalog_before_any_download(
    ponder_env: dict[str, str], ponder_home: Path
) -> None:
    result = ponder("fit", env=ponder_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # This machine's RAM bandwidth, measured on the first run and remembered.
    assert lines[0].startswith("speeds predicted for this machine: RAM reads ")
    assert "(measured once and remembered)" in lines[0]
    assert (ponder_home / "cache" / "bandwidth.json").exists()
    assert lines[1].split()[:5] == ["MODEL", "QUANT", "SIZE", "NEEDS", "VERDICT"]
    assert lines[1].split()[-1] == "SPEED"
    small = next(line for line in lines if line.startswith("r1:1.5b"))
    assert re.search(r"≈ [\d.,]+ tok/s · about \d+(\.\d)? (s|min|h) for a 1,500-token reply", small)
    assert any(line.startswith("r1-llama:70b") and "too big" in line for line in lines)
    assert "free disk for models" in result.stdout


def test_fit_json_gives_each_row_its_speed(ponder_env: dict[str, str]) -> None:
    result = ponder("fit", "--json", env=ponder_env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["machine"]["ram_bandwidth_measured"] is True
    assert data["machine"]["ram_bandwidth_bytes_per_s"] > 1e8
    rows = {(r["model"], r["quant"]): r for r in data["rows"]}
    small = rows[("r1:1.5b", "Q4_K_M")]
    assert small["decode_tok_s"] > 0 and small["prompt_tok_s"] > 0
    assert small["decode_full_context_tok_s"] < small["decode_tok_s"]
    assert rows[("r1-llama:70b", "Q8_0")]["decode_tok_s"] is None  # too big here
    assert "r1:671b" in data["served_only"] and data["free_disk_bytes"] > 0


def test_fit_one_model_shows_its_plan(ponder_env: dict[str, str]) -> None:
    result = ponder("fit", "r1:1.5b", env=ponder_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("r1:1.5b@Q4_K_M: ")
    assert "(catalog, not downloaded)" in result.stdout.splitlines()[0]
    assert "plan: cpu, 0/29 layers on GPU, context 16,384" in result.stdout
    assert "  speed: decode ≈ " in result.stdout


def test_fit_takes_a_gguf_file_and_an_installed_model(
    gemma_path: Path, ponder_env: dict[str, str]
) -> None:
    by_path = ponder("fit", gemma_path, env=ponder_env)
    assert by_path.returncode == 0, by_path.stderr
    assert by_path.stdout.startswith(f"{gemma_path.name}: ") and "(file)" in by_path.stdout
    assert "plan: cpu, 0/19 layers on GPU, context 16,384" in by_path.stdout
    assert "  speed: decode ≈ " in by_path.stdout
    as_json = json.loads(ponder("fit", gemma_path, "--json", env=ponder_env).stdout)
    assert as_json["source"] == "file" and as_json["plan"]["n_layers_total"] == 19
    assert as_json["plan"]["decode_tok_s"] > 0 and as_json["plan"]["prompt_tok_s"] > 0
    imported = ponder("import", gemma_path, "--name", "tiny", "--link", env=ponder_env)
    assert imported.returncode == 0, imported.stderr
    by_name = ponder("fit", "tiny", env=ponder_env)
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout.startswith("tiny: ") and "(installed)" in by_name.stdout
    assert "  speed: decode ≈ " in by_name.stdout


def test_fit_of_a_missing_file_or_an_unknown_name_is_one_line(ponder_env: dict[str, str]) -> None:
    missing = ponder("fit", "./nowhere.gguf", env=ponder_env)
    assert_clean_error(missing, 3, "no such model file")
    unknown = ponder("fit", "r1:9000b", env=ponder_env)
    assert unknown.returncode == 3 and "Traceback" not in unknown.stderr


def test_setup_recommends_and_asks_before_downloading(ponder_env: dict[str, str]) -> None:
    result = ponder("setup", env=ponder_env)
    assert result.returncode == 2
    assert "recommended: r1" in result.stdout and "plan: " in result.stdout
    assert re.search(r"recommended: r1\S+ \([\d.]+ GB, ≈ [\d.,]+ tok/s · about ", result.stdout)
    assert "  speed: decode ≈ " in result.stdout
    assert "without asking" in result.stderr and "--yes" in result.stderr


def test_setup_bigger_takes_the_slower_choice(ponder_env: dict[str, str]) -> None:
    plain = ponder("setup", "--no-pull", env=ponder_env)
    bigger = ponder("setup", "--no-pull", "--bigger", env=ponder_env)
    assert plain.returncode == bigger.returncode == 0, plain.stderr + bigger.stderr
    first = re.search(r"recommended: (\S+) ", plain.stdout)
    assert first is not None
    offered = re.search(r"bigger: (\S+) \(", plain.stdout)
    if offered is None:  # the largest distill that fits is fast enough here
        assert "nothing bigger than" in bigger.stderr
    else:
        assert f"recommended: {offered[1]} " in bigger.stdout


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
    assert "  speed: decode ≈ " in result.stderr and "prompt ≈ " in result.stderr
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
