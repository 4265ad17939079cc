"""Where Ponder keeps its files, and which names may become paths under them.

platformdirs gives the per-OS locations. ``PONDER_HOME`` overrides all of them with
one folder, which is what tests and portable installs use.

Names that come from outside (a ``hf:`` reference, a repo listing, a catalog entry)
become paths in the model store, so they are checked here, in one place, before any
of them is joined to a folder: a repo id the Hub itself would accept, and a file path
with no ``..``, no absolute part and no backslash (:func:`repo_id_problem`,
:func:`repo_path_problem`). :func:`inside` is the last word: the resolved destination
must lie under the resolved store, or nothing is written or deleted.

Folders and files Ponder creates are for the user: at most 0755 and 0644 whatever the
umask (:func:`make_dirs`, :func:`create_file`), so with ``umask 000`` nobody else can
replace a model. A stricter umask still wins.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "ponder"


@dataclass(frozen=True, slots=True)
class Paths:
    """The folders Ponder reads and writes. Nothing is created until asked."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def user_catalog(self) -> Path:
        return self.config_dir / "models.toml"

    @property
    def history_db(self) -> Path:
        return self.data_dir / "history.sqlite3"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def default_paths(env: dict[str, str] | None = None) -> Paths:
    """Resolve the folders, honouring ``PONDER_HOME`` when it is set."""
    environ = os.environ if env is None else env
    home = environ.get("PONDER_HOME")
    if home:
        root = Path(home).expanduser()
        return Paths(config_dir=root / "config", data_dir=root / "data", cache_dir=root / "cache")
    return Paths(
        config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        cache_dir=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
    )


DIR_MODE = 0o755  # at most; the umask may take more away
FILE_MODE = 0o644

# The Hub's own rule (huggingface_hub's validate_repo_id): letters, digits, "-", "_" and
# ".", not starting or ending with "-" or ".", no "--" or "..", at most 96 characters.
# Ponder takes model repos only, so always OWNER/NAME.
_REPO_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_DRIVE = re.compile(r"^[A-Za-z]:")


def repo_id_problem(repo: str) -> str | None:
    """Why ``repo`` is not a Hub model repo id (``owner/name``), or None when it is one."""
    parts = repo.split("/")
    if len(parts) != 2 or not all(_REPO_PART.fullmatch(part) for part in parts):
        return "a repo id is OWNER/NAME of letters, digits, '-', '_' and '.' (not first or last)"
    if "--" in repo or ".." in repo:
        return "a repo id cannot contain '--' or '..'"
    if len(repo) > 96 or repo.endswith(".git"):
        return "a repo id is at most 96 characters and does not end in '.git'"
    return None


def repo_path_problem(path: str) -> str | None:
    """Why ``path`` is not a plain relative path inside a repo, or None when it is one."""
    if not path or path.startswith("/") or _DRIVE.match(path):
        return "it is empty or absolute"
    if "\\" in path or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return "it holds a backslash or a control character"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "it has an empty, '.' or '..' part"
    return None


def inside(root: Path, path: Path) -> bool:
    """Whether ``path``, resolved (symlinks and ``..`` followed), lies under ``root``."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop, an unreadable folder
        return False


def make_dirs(path: Path, mode: int = DIR_MODE) -> None:
    """``mkdir -p`` whose new folders get at most ``mode``, whatever the umask (``mkdir``
    applies the umask to ``mode``, which can only take bits away). Folders that exist
    already are left as they are: they may be the user's."""
    missing: list[Path] = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:  # another process made it meanwhile
            if not folder.is_dir():
                raise


def create_file(path: Path, flags: int, mode: int = FILE_MODE) -> int:
    """``os.open`` with ``O_CREAT``: a new file gets at most ``mode`` whatever the umask,
    and one that exists with looser bits (an older Ponder under ``umask 000``) is tightened."""
    fd = os.open(path, flags | os.O_CREAT, mode)
    try:
        current = os.fstat(fd).st_mode & 0o777
        if current & ~mode:
            os.fchmod(fd, current & mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a crash leaves the old file or the new one,
    never half of either: a synced temporary file in the same folder, then a rename.
    The file is 0600 (``mkstemp``'s mode), its folder at most 0755 when made here."""
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
