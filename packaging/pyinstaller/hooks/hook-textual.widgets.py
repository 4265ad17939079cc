"""textual.widgets imports each widget lazily (module __getattr__): collect them all."""

from PyInstaller.utils.hooks import collect_submodules

hiddenimports = collect_submodules("textual.widgets")
