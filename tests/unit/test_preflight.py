"""The child-process check: a GGUF that would abort llama.cpp costs the child, not Ponder.

The bad file is the Gemma header with a BERT tokenizer, which aborts llama.cpp's
vocabulary code (``llama-vocab.cpp: fatal error``). The header checks refuse it too, so
these tests call the preflight directly: it stands for whatever a check cannot foresee.
Sparse copies suffice, since a vocabulary-only load reads no tensor data.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ponder.engine import preflight
from ponder.errors import ExitCode, ModelLoadError
from support import gguf_corpus as corpus
from support import gguf_mutants as mutants

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def layout(gemma_path: Path) -> mutants.Layout:
    return mutants.layout(gemma_path)


@pytest.fixture()
def aborting(layout: mutants.Layout, tmp_path: Path) -> Path:
    header = corpus.NAMED["bert-tokenizer-in-gemma3"](layout)
    return mutants.write_sparse(layout, header, tmp_path / "bert-in-gemma.gguf")


@pytest.fixture()
def verdicts(tmp_path: Path) -> Path:
    return tmp_path / "cache" / preflight.VERDICTS_FILE


def no_child(*args: object, **kwargs: object) -> None:
    raise AssertionError("the verdict should have come from the cache")


def test_a_file_that_aborts_llama_cpp_is_refused_in_one_line(
    aborting: Path, verdicts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ModelLoadError) as caught:
        preflight.check(aborting, verdicts)
    error = caught.value
    assert error.exit_code == ExitCode.MODEL_LOAD
    assert "\n" not in str(error)
    assert error.message.startswith("llama.cpp crashed (SIGABRT) reading bert-in-gemma.gguf")
    assert "llama-vocab.cpp" in error.message
    # remembered: the second time no child runs, and the answer is the same
    monkeypatch.setattr(subprocess, "run", no_child)
    with pytest.raises(ModelLoadError) as again:
        preflight.check(aborting, verdicts)
    assert again.value.message == error.message


def test_a_good_file_is_checked_once(
    gemma_path: Path, verdicts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preflight.check(gemma_path, verdicts)
    entries = json.loads(verdicts.read_text())
    assert list(entries.values()) == [{"ok": True}]
    assert str(gemma_path.resolve()) in next(iter(entries))
    monkeypatch.setattr(subprocess, "run", no_child)
    preflight.check(gemma_path, verdicts)


def test_a_changed_file_is_checked_again(
    layout: mutants.Layout, aborting: Path, verdicts: Path
) -> None:
    good = mutants.write_sparse(layout, layout.header, aborting.with_name("good.gguf"))
    preflight.check(good, verdicts)
    aborting.replace(good)  # same path, other bytes and mtime
    os.utime(good, ns=(1, 1))
    with pytest.raises(ModelLoadError, match="crashed"):
        preflight.check(good, verdicts)


def test_an_unreadable_verdict_file_is_ignored(gemma_path: Path, verdicts: Path) -> None:
    verdicts.parent.mkdir(parents=True)
    verdicts.write_text("[[[" * 10_000)
    preflight.check(gemma_path, verdicts)
    assert list(json.loads(verdicts.read_text()).values()) == [{"ok": True}]


def test_the_checked_loader_never_hands_a_crashing_file_to_the_engine(
    gemma_path: Path, aborting: Path, verdicts: Path
) -> None:
    from ponder import gguf_info
    from ponder.engine import LoadParams

    loaded: list[Path] = []

    def engine_load(info: gguf_info.GGUFInfo, params: LoadParams) -> object:
        loaded.append(info.path)
        return object()

    load = preflight.checked_loader(verdicts, engine_load)  # type: ignore[arg-type]
    good = gguf_info.inspect(gemma_path)
    load(good, LoadParams(n_ctx=256))
    bad = good.__class__(**{**good.__dict__, "path": aborting})
    with pytest.raises(ModelLoadError, match="crashed"):
        load(bad, LoadParams(n_ctx=256))
    assert loaded == [gemma_path]
