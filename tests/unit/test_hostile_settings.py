"""Hostile or broken settings files: ``config.toml`` and the user's ``models.toml``.

A folder, a device, a huge or deeply nested file, or values far outside anything real:
each one is one ConfigError line (exit 1) naming the file, quickly, never a traceback,
a hang or an exhausted memory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ponder.catalog import load_catalog
from ponder.config import MAX_SETTINGS_FILE_BYTES, load_settings
from ponder.errors import CatalogError, ConfigError, ExitCode
from ponder.paths import Paths, default_paths

NESTED = "x = " + "[" * 5000 + "]" * 5000 + "\n"
NESTED_TABLES = "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n"


def _directory(path: Path) -> None:
    path.mkdir()


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _fifo(path: Path) -> None:
    os.mkfifo(path)  # nobody writes to it: opening it for reading would wait forever


def _huge(path: Path) -> None:
    with path.open("w") as handle:  # valid TOML, just far too much of it
        handle.truncate(MAX_SETTINGS_FILE_BYTES + 1)


def _nested(path: Path) -> None:
    path.write_text(NESTED)


def _nested_tables(path: Path) -> None:
    path.write_text(NESTED_TABLES)


def _symlink_loop(path: Path) -> None:
    path.symlink_to(path.name)


HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "a directory": (_directory, "is not a regular file"),
    "a link to /dev/zero": (_dev_zero, "is not a regular file"),
    "a fifo": (_fifo, "is not a regular file"),
    "too big": (_huge, "is larger than"),
    "nested arrays": (_nested, "nested too deeply"),
    "nested tables": (_nested_tables, "nested too deeply"),
    "a symlink loop": (_symlink_loop, "cannot read"),
}


def _paths() -> Paths:
    paths = default_paths()
    paths.config_dir.mkdir(parents=True)
    return paths


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_config_file_is_one_line(case: str) -> None:
    make, fragment = HOSTILE[case]
    paths = _paths()
    make(paths.config_file)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_settings(paths)
    assert time.monotonic() - started < 30  # a deadline, not a stopwatch: it must not hang
    message = str(info.value)
    assert "\n" not in message
    assert str(paths.config_file) in message and fragment in message
    assert info.value.exit_code == ExitCode.ERROR


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_user_catalog_is_one_line(case: str) -> None:
    make, fragment = HOSTILE[case]
    paths = _paths()
    make(paths.user_catalog)
    with pytest.raises(CatalogError) as info:
        load_catalog(paths.user_catalog)
    message = str(info.value)
    assert "\n" not in message
    assert str(paths.user_catalog) in message and fragment in message
    assert info.value.exit_code == ExitCode.ERROR


def test_a_config_file_that_is_not_utf8() -> None:
    paths = _paths()
    paths.config_file.write_bytes(b'default_model = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(paths)


def test_a_dangling_link_is_no_config_file() -> None:
    paths = _paths()
    paths.config_file.symlink_to("nowhere.toml")
    assert load_settings(paths).reasoning == "stderr"


def test_the_file_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """What was checked is what is used: pydantic-settings does not read the file again."""
    paths = _paths()
    paths.config_file.write_text('reasoning = "hide"\n')
    import tomllib

    loads = []
    real_loads = tomllib.loads

    def counting(text: str) -> object:
        loads.append(text)
        return real_loads(text)

    monkeypatch.setattr(tomllib, "loads", counting)
    monkeypatch.setattr(tomllib, "load", lambda *a, **k: pytest.fail("read the file again"))
    assert load_settings(paths).reasoning == "hide"
    assert len(loads) == 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("threads = 100000000\n", "setting 'threads'"),
        ('default_model = "' + "m" * 5000 + '"\n', "setting 'default_model'"),
        ('models_dir = "' + "d" * 5000 + '"\n', "setting 'models_dir'"),
    ],
    ids=["threads", "default_model", "models_dir"],
)
def test_config_values_are_bounded(text: str, fragment: str) -> None:
    paths = _paths()
    paths.config_file.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(paths)


# ------------------------------------------------- numbers the planner must survive


def test_fit_answers_quickly_at_the_largest_numbers_the_catalog_allows() -> None:
    """Every recorded machine, a user catalog of models at the schema's limits (many
    quants each): the planner's work per plan must not grow with the square of the layer
    count, which took 1.5 s per quant at 1,024 layers on two GPUs."""
    from ponder import hardware
    from ponder.catalog import parse_catalog
    from ponder.catalog.schema import ARCH_LIMITS
    from support.machines import PROFILES, machine

    arch = ", ".join(f"{k} = {v}" for k, v in {**ARCH_LIMITS, "kv_heads": 8, "heads": 64}.items())
    quants = "".join(
        f'[[model.quant]]\nquant = "Q{i}"\nrepo = "a/b"\nfiles = ["m-Q{i}.gguf"]\n'
        f"size_bytes = {(i + 1) * 10**11}\n"
        for i in range(6)
    )
    text = '[[model]]\nid = "huge"\nname = "Huge"\ndefault_quant = "Q0"\n'
    text += f'arch = {{ gguf_arch = "llama", {arch} }}\n{quants}'
    models = parse_catalog(text, "models.toml")
    started = time.monotonic()
    for profile in sorted(PROFILES.glob("*.json")):
        rows = hardware.fit_table(models, machine(profile.stem))
        assert len(rows) == 6
        assert {row.verdict for row in rows} <= {"gpu", "partial", "cpu", "too_big"}
    assert time.monotonic() - started < 30  # a deadline: it took minutes before
