"""Settings: defaults, the TOML file, PONDER_* environment, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.config import load_settings, models_dir
from ponder.errors import ConfigError, ExitCode
from ponder.paths import default_paths


def test_defaults_without_a_file(ponder_home: Path) -> None:
    settings = load_settings(default_paths())
    assert settings.reasoning == "stderr" and settings.save_chats
    assert models_dir(settings, default_paths()) == ponder_home / "data" / "models"


def test_ponder_home_moves_every_folder(ponder_home: Path) -> None:
    paths = default_paths()
    for folder in (paths.config_dir, paths.data_dir, paths.cache_dir):
        assert folder.is_relative_to(ponder_home)


def test_file_then_environment(ponder_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = default_paths()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text('reasoning = "hide"\nthreads = 3\nmodels_dir = "~/m"\n')
    settings = load_settings(paths)
    assert settings.reasoning == "hide" and settings.threads == 3
    assert models_dir(settings, paths) == Path("~/m").expanduser()
    monkeypatch.setenv("PONDER_THREADS", "5")
    assert load_settings(paths).threads == 5


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("threds = 4\n", "setting 'threds': Extra inputs are not permitted"),
        ('reasoning = "loud"\n', "setting 'reasoning'"),
        ("threads = 0\n", "setting 'threads'"),
        ("threads = [\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_setting(ponder_home: Path, text: str, fragment: str) -> None:
    paths = default_paths()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(paths)
    assert fragment in str(info.value)
    assert info.value.exit_code == ExitCode.ERROR
