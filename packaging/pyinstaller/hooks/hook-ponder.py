"""Ponder's data: the shipped catalog (ponder/models.toml) and the chat UI's .tcss files.

The TUI and the engine are imported inside functions (so headless commands stay light),
which PyInstaller's import scan cannot see: name them here.
"""

from pathlib import Path

from PyInstaller.utils.hooks import collect_data_files, collect_submodules

datas = collect_data_files("ponder", includes=["**/*.tcss", "models.toml"])
_checkout_catalog = Path(__file__).resolve().parents[3] / "models.toml"  # a source checkout
if not any(dest == "ponder" and src.endswith("models.toml") for src, dest in datas):
    datas.append((str(_checkout_catalog), "ponder"))
hiddenimports = collect_submodules("ponder")
