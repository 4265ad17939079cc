"""User settings: a TOML file plus ``PONDER_*`` environment variables.

pydantic-settings does the merging and validation (env beats file beats defaults);
``extra="forbid"`` turns a typo in the file into an error that names the key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ponder.errors import ConfigError
from ponder.paths import Paths, default_paths

ReasoningMode = Literal["stderr", "hide", "inline"]


class Settings(BaseSettings):
    """Everything a user may set. Every field has a sensible default."""

    model_config = SettingsConfigDict(env_prefix="PONDER_", extra="forbid")

    models_dir: Path | None = Field(
        default=None, description="Where downloaded models live (default: <data dir>/models)."
    )
    default_model: str | None = Field(
        default=None, description="Model used when `ponder run` is given none."
    )
    reasoning: ReasoningMode = Field(
        default="stderr", description="Where `ponder run` sends the thinking."
    )
    threads: int | None = Field(default=None, ge=1, description="CPU threads for generation.")
    save_chats: bool = Field(default=True, description="Save headless runs to the chat history.")

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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _TOML_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


# pydantic-settings reads the TOML path at class level; load_settings sets it per call.
_TOML_FILE: dict[str, Path | None] = {"path": None}


def load_settings(paths: Paths | None = None, **overrides: Any) -> Settings:
    """Read ``config.toml`` (if present) and the environment into :class:`Settings`."""
    paths = paths or default_paths()
    config_file = paths.config_file
    if config_file.exists():
        try:
            tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{config_file} is not valid TOML: {exc}", hint="fix or delete the file"
            ) from None
    _TOML_FILE["path"] = config_file if config_file.exists() else None
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(
            f"{config_file}: setting '{where}': {first['msg']}",
            hint="see `ponder --help` for the settings Ponder knows",
        ) from None
    finally:
        _TOML_FILE["path"] = None


def models_dir(settings: Settings, paths: Paths) -> Path:
    return settings.models_dir.expanduser() if settings.models_dir else paths.models_dir
