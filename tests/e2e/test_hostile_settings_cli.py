"""Broken settings files seen as a user sees them: `ponder` in a subprocess prints one
line and exits 1, promptly, whatever sits where config.toml or models.toml should be."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.cli import assert_clean_error, ponder

HUGE_MODEL = """
[[model]]
id = "huge"
name = "Huge"
arch = { gguf_arch = "qwen2", layers = 1000000000, hidden_size = 1536, heads = 12, kv_heads = 2, head_dim = 128, context_length = 131072, vocab_size = 151936 }

[[model.quant]]
quant = "Q4_K_M"
repo = "a/b"
files = ["huge-Q4_K_M.gguf"]
size_bytes = 1000
"""  # noqa: E501


def _config_dir(env: dict[str, str]) -> Path:
    folder = Path(env["PONDER_HOME"]) / "config"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("name", ["config.toml", "models.toml"])
@pytest.mark.parametrize("kind", ["directory", "dev-zero", "fifo", "nested"])
def test_a_hostile_settings_file_is_one_line(
    ponder_env: dict[str, str], name: str, kind: str
) -> None:
    path = _config_dir(ponder_env) / name
    if kind == "directory":
        path.mkdir()
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    result = ponder("chats", "list", env=ponder_env, timeout=60)
    assert_clean_error(result, 1, str(path))


def test_fit_refuses_a_user_model_with_a_billion_layers(ponder_env: dict[str, str]) -> None:
    """It ran past 60 s (killed) before the schema bounded the numbers."""
    (_config_dir(ponder_env) / "models.toml").write_text(HUGE_MODEL)
    result = ponder("fit", env=ponder_env, timeout=60)
    assert_clean_error(result, 1, "model 'huge': field 'arch.layers': Input should be less than")
