"""Reading the catalog: the shipped ``models.toml``, a user's own merged over it.

Parses and validates each document, and turns the first validation problem into one
line naming the file, the model entry, the quant and the field. A user's file is read
as ``config.toml`` is (:func:`ponder.config.read_settings_text`): a regular file of
bounded size, so a folder, a device or a FIFO in its place is one line, not a hang.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from ponder.catalog.resolve import Catalog, _build_index
from ponder.catalog.schema import ModelEntry, _CatalogFile
from ponder.catalog.served import ServedEntry
from ponder.config import parse_toml, read_settings_text
from ponder.errors import CatalogError


class _Document(_CatalogFile):
    """A whole catalog file: ``[[model]]`` tables and ``[[served]]`` (server-only) ones."""

    served: list[ServedEntry] = Field(default_factory=list)


def load_catalog(user_catalog: Path | None = None) -> Catalog:
    """Load the shipped catalog and merge ``user_catalog`` over it when that file exists.

    Served entries merge the same way as models: the user's replace those with their id.
    """
    text, source = _read_builtin()
    document = _parse(text, source)
    entries = [(entry, source) for entry in document.model]
    served = {entry.id: entry for entry in document.served}
    user_text = None if user_catalog is None else _read_file(user_catalog)
    if user_catalog is not None and user_text is not None:
        user_source = str(user_catalog)
        user = _parse(user_text, user_source)
        entries = _merge(entries, [(entry, user_source) for entry in user.model])
        served.update({entry.id: entry for entry in user.served})
    return Catalog((entry for entry, _ in entries), served=served.values())


def parse_catalog(text: str, source: str) -> list[ModelEntry]:
    """Parse and validate one catalog document; ``source`` names it in error messages."""
    return _parse(text, source).model


def _parse(text: str, source: str) -> _Document:
    raw = parse_toml(text, source, error=CatalogError)
    try:
        document = _Document.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(_describe(source, raw, exc)) from None
    _build_index([(entry, source) for entry in document.model])
    return document


def _read_builtin() -> tuple[str, str]:
    packaged = resources.files("ponder") / "models.toml"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8"), str(packaged)
    # A source checkout: ROOT/models.toml, this file being ROOT/app/ponder/catalog/loading.py.
    checkout = Path(__file__).resolve().parents[3] / "models.toml"
    text = _read_file(checkout) if checkout.is_file() else None
    if text is not None:
        return text, str(checkout)
    raise CatalogError(
        "the built-in models.toml is missing from this installation", hint="reinstall ponder"
    )


def _read_file(path: Path) -> str | None:
    """The file's text; None when it does not exist."""
    return read_settings_text(path, error=CatalogError)  # 1 MiB; the shipped one is 26 KB


def _merge(
    base: list[tuple[ModelEntry, str]], user: list[tuple[ModelEntry, str]]
) -> list[tuple[ModelEntry, str]]:
    """User entries replace same-id entries in place; new ones go at the end."""
    replacements = {entry.id: (entry, source) for entry, source in user}
    kept = [pair for pair in base if pair[0].id not in replacements]
    # Check names with the user's entries last, so a clash is blamed on the user's file.
    _build_index(kept + user)
    base_ids = {entry.id for entry, _ in base}
    merged = [replacements.get(entry.id, (entry, source)) for entry, source in base]
    return merged + [pair for pair in user if pair[0].id not in base_ids]


# ------------------------------------------------------------------- error messages


def _describe(source: str, raw: Any, exc: ValidationError) -> str:
    """One line for the first problem: file, model entry, quant, field, what is wrong."""
    errors = exc.errors()
    first = errors[0]
    message = f"{source}: {_where(raw, first)}: {_what(first)}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return message


def _where(raw: Any, error: Mapping[str, Any]) -> str:
    loc = list(error["loc"])
    parts: list[str] = []
    if len(loc) >= 2 and loc[0] == "model" and isinstance(loc[1], int):
        entry = _item(raw, "model", loc[1])
        parts.append(f"model {_label(entry, 'id', loc[1])}")
        loc = loc[2:]
        if len(loc) >= 2 and loc[0] == "quant" and isinstance(loc[1], int):
            parts.append(f"quant {_label(_item(entry, 'quant', loc[1]), 'quant', loc[1])}")
            loc = loc[2:]
    field = [f"field '{_dotted(loc)}'"] if loc else []
    return ": ".join([", ".join(parts), *field] if parts else field) or "document"


def _what(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")


def _item(container: Any, key: str, index: int) -> Any:
    items = container.get(key) if isinstance(container, dict) else None
    if isinstance(items, list) and 0 <= index < len(items):
        return items[index]
    return None


def _label(item: Any, key: str, index: int) -> str:
    value = item.get(key) if isinstance(item, dict) else None
    return f"'{value}'" if isinstance(value, str) and value else f"#{index + 1}"


def _dotted(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
