"""User settings: a TOML file plus ``PONDER_*`` environment variables.

pydantic-settings does the merging and validation (env beats file beats defaults);
``extra="forbid"`` turns a typo in the file into an error that names the key.

Settings files are the user's, but not always what they look like: a folder, a link to
``/dev/zero``, a FIFO, a huge file, arrays nested thousands deep. :func:`read_toml` reads
them for this module and for the user's catalog alike: a regular file only (opened
without blocking, so a FIFO cannot hang the start), at most
:data:`MAX_SETTINGS_FILE_BYTES`, parsed once, and every failure one :class:`ConfigError`
line naming the file. pydantic-settings gets the parsed table rather than the path, so
what was checked is what is used. Values are bounded by the schema.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ponder.errors import ConfigError
from ponder.paths import Paths, default_paths
from ponder.remote_settings import RemoteConfig

MAX_SETTINGS_FILE_BYTES = 1 << 20  # config.toml, models.toml: a few KB in practice
MAX_THREADS = 1024
MAX_TEXT = 1024  # a model name
MAX_PATH = 4096  # PATH_MAX on Linux
MAX_KV_CACHE_MB = 1 << 24  # 16 TB: a bound, not a suggestion

ReasoningMode = Literal["stderr", "hide", "inline"]


class Settings(BaseSettings):
    """Everything a user may set. Every field has a sensible default."""

    model_config = SettingsConfigDict(env_prefix="PONDER_", extra="forbid")

    models_dir: Path | None = Field(
        default=None, description="Where downloaded models live (default: <data dir>/models)."
    )
    default_model: str | None = Field(
        default=None, max_length=MAX_TEXT, description="Model used when `ponder run` is given none."
    )
    reasoning: ReasoningMode = Field(
        default="stderr", description="Where `ponder run` sends the thinking."
    )
    threads: int | None = Field(
        default=None, ge=1, le=MAX_THREADS, description="CPU threads for generation."
    )
    save_chats: bool = Field(default=True, description="Save headless runs to the chat history.")
    kv_cache_mb: int = Field(
        default=4096,
        ge=0,
        le=MAX_KV_CACHE_MB,
        description="Disk for saved chat states, which let a continued chat skip re-reading "
        "itself (MB; the least recently used go first; 0 turns them off).",
    )
    usable_tok_s: float = Field(
        default=8.0,
        gt=0,
        le=10_000,
        description="Decode tokens/s a model must reach here to be recommended (the welcome "
        "screen, `ponder setup`) and to rank among the best choices in `ponder fit`.",
    )
    remotes: dict[str, RemoteConfig] = Field(
        default_factory=dict,
        description="OpenAI-compatible servers, by name (`ponder remote add` writes them).",
    )

    @field_validator("models_dir", mode="before")
    @classmethod
    def _models_dir_not_blank(cls, value: object) -> object:
        # Path("") is the current folder: an empty setting must not make it the store.
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "is empty (here or in PONDER_MODELS_DIR): remove it to use the default "
                "folder, or name one"
            )
        return value

    @field_validator("models_dir")
    @classmethod
    def _path_length(cls, value: Path | None) -> Path | None:
        if value is not None and len(str(value)) > MAX_PATH:
            raise ValueError(f"a path longer than {MAX_PATH:,} characters")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        data = _TOML_DATA.get("data")
        if data is not None:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=data))
        return tuple(sources)


# pydantic-settings asks for its sources at class level; load_settings sets the table per call.
_TOML_DATA: dict[str, dict[str, Any] | None] = {"data": None}


def load_settings(paths: Paths | None = None, **overrides: Any) -> Settings:
    """Read ``config.toml`` (if present) and the environment into :class:`Settings`."""
    paths = paths or default_paths()
    config_file = paths.config_file
    _TOML_DATA["data"] = read_toml(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        where, what = first_problem(exc, "settings")
        raise ConfigError(
            f"{config_file}: setting '{where}': {what}",
            hint="see `ponder --help` for the settings Ponder knows",
        ) from None
    finally:
        _TOML_DATA["data"] = None


def models_dir(settings: Settings, paths: Paths) -> Path:
    return settings.models_dir.expanduser() if settings.models_dir else paths.models_dir


# ------------------------------------------------------------------ reading the files


def read_toml(
    path: Path, *, error: type[ConfigError] = ConfigError, limit: int = MAX_SETTINGS_FILE_BYTES
) -> dict[str, Any] | None:
    """The TOML table in ``path``, or None when there is no such file (a dangling link
    included); anything else that is wrong with it is one ``error`` naming the file."""
    text = read_settings_text(path, error=error, limit=limit)
    if text is None:
        return None
    return parse_toml(text, str(path), error=error)


def parse_toml(text: str, source: str, *, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: not valid TOML: {exc}", hint="fix or delete the file") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays or tables
        raise error(
            f"{source}: not valid TOML: its arrays or tables are nested too deeply",
            hint="fix or delete the file",
        ) from None


def read_settings_text(
    path: Path, *, error: type[ConfigError] = ConfigError, limit: int = MAX_SETTINGS_FILE_BYTES
) -> str | None:
    """The text of a small settings file: a regular file of at most ``limit`` bytes of
    UTF-8; None when it does not exist."""
    try:
        # O_NONBLOCK: opening a FIFO nobody writes to returns at once instead of waiting.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(
                f"{path} is not a regular file ({_kind(info.st_mode)})",
                hint="replace it with a TOML file, or remove it",
            )
        data = _read_at_most(fd, limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(
            f"{path} is larger than {limit:,} bytes; a settings file is a few KB",
            hint="fix or delete the file",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="save it as UTF-8",
        ) from None


def _read_at_most(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def first_problem(exc: ValidationError, default: str) -> tuple[str, str]:
    """Where the first validation problem is (dotted field path, else ``default``) and
    what it is: one line of a user error."""
    first = exc.errors()[0]
    return ".".join(str(p) for p in first["loc"]) or default, first["msg"]
