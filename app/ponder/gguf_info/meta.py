"""Typed access to a header's metadata: a value of the wrong type is a corrupt file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ponder.errors import GGUFError
from ponder.gguf_info.header import _HINT_REDOWNLOAD
from ponder.gguf_info.values import Value, _Array

T = TypeVar("T")


class _Meta:
    """Typed access to the first shard's metadata; wrong types are corruption."""

    def __init__(self, path: Path, kv: dict[str, Value], arch: str) -> None:
        self.path = path
        self.kv = kv
        self.arch = arch

    def key(self, template: str) -> str:
        return template.format(arch=self.arch)

    def _get(self, template: str, kind: Callable[[Value], T | None], what: str) -> T | None:
        """The value at ``template``, None when absent; a wrong type is corruption."""
        key = self.key(template)
        if key not in self.kv:
            return None
        value = kind(self.kv[key])
        if value is None:
            raise GGUFError(
                f"corrupt GGUF header in {self.path}: {key} should be {what}, "
                f"found {_describe(self.kv[key])}",
                hint=_HINT_REDOWNLOAD,
            )
        return value

    def get_int(self, template: str) -> int | None:
        return self._get(template, _as_int, "an integer")

    def get_str(self, template: str) -> str | None:
        return self._get(template, _as_str, "a string")

    def get_bool(self, template: str) -> bool | None:
        return self._get(template, _as_bool, "a boolean")

    def get_layer_max(self, template: str) -> int | None:
        """An int that some models store per layer; for an array, the largest."""
        return self._get(template, _as_layer_max, "an integer or an array of integers")

    def required_int(self, template: str, *, limit: int = 1 << 40) -> int:
        """A count the model cannot do without: present, positive, plausible."""
        value = self.get_int(template)
        if value is None:
            raise _missing_key(self.path, self.key(template))
        if not 0 < value <= limit:
            raise GGUFError(
                f"corrupt GGUF header in {self.path}: {self.key(template)} is {value}",
                hint=_HINT_REDOWNLOAD,
            )
        return value


def _describe(value: Value) -> str:
    if isinstance(value, _Array):
        return f"an array of {value.count} {value.item_type.name.lower()}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _as_int(value: Value) -> int | None:
    return value if type(value) is int else None


def _as_layer_max(value: Value) -> int | None:
    if isinstance(value, tuple) and value and all(type(v) is int for v in value):
        return max(int(v) for v in value)
    return _as_int(value)


def _as_str(value: Value) -> str | None:
    return value if isinstance(value, str) else None


def _as_bool(value: Value) -> bool | None:
    return value if isinstance(value, bool) else None


def _missing_key(path: Path, key: str) -> GGUFError:
    return GGUFError(
        f"{path} lacks the required metadata key {key!r}",
        hint="the file is incomplete or is not a language model llama.cpp can run",
    )
