"""The layering of docs/architecture.md#layers, enforced: import-linter's contracts (pyproject)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from support.cli import assert_clean_error, ponder

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    tool = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run(
        [tool, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


HEAVY = ("pydantic", "gguf", "numpy", "jinja2", "rich", "huggingface_hub", "llama_cpp", "textual")


def test_importing_the_cli_and_its_help_load_nothing_heavy() -> None:
    """`ponder --help` and `ponder --version` stay fast: heavy imports wait for a command
    that needs them (the session, a progress bar, the chat UI)."""
    code = (
        "import contextlib, io, sys\n"
        "import ponder.cli\n"
        "from ponder.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    codes = [main(['--help']), main(['--version']), main(['run', '--help']),\n"
        "             main(['chats', '--help'])]\n"
        "assert codes == [0, 0, 0, 0] and 'exit codes:' in out.getvalue(), codes\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(heavy); sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_headless_run_never_loads_textual(gemma_path: Path, ponder_env: dict[str, str]) -> None:
    """The whole `ponder run` path, model and all, stays free of the UI toolkit."""
    code = (
        "import sys; from ponder.cli import main; "
        f"rc = main(['run', {str(gemma_path)!r}, '--max-tokens', '4', '--no-save', 'hi']); "
        "print('textual' in sys.modules, 'llama_cpp' in sys.modules, rc, file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ponder_env, timeout=300
    )
    assert result.stderr.strip().endswith("False True 0"), result.stderr


def test_the_chat_ui_without_a_terminal_is_a_clear_usage_error(ponder_env: dict[str, str]) -> None:
    result = ponder(env=ponder_env)
    assert_clean_error(result, 2, "the chat UI needs a terminal")
    assert "ponder run MODEL" in result.stderr
