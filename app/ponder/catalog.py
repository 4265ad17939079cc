"""The curated model catalog: what Ponder can download, and how each model wants to run.

Why a module of its own: the facts about a model (which Hub repo and files, how big,
which hashes, its architecture numbers, and its prompt and sampling policy) are data,
kept in ``models.toml`` where they can be reviewed against their sources, not spread
through the code. This module turns that file into typed, validated objects and
resolves what a user types (``r1:7b``, ``r1:7b@q8_0``, a full id) into one model and
one quantization.

Validation is strict (pydantic, ``extra="forbid"``, strict types): a typo in the
shipped catalog or in a user's own ``models.toml`` is reported as one line naming the
file, the model entry and the field, never silently ignored. A user catalog is merged
over the shipped one: an entry with an existing id replaces it, a new id is added.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)

from ponder import shards
from ponder.errors import CatalogError, ModelNotFoundError
from ponder.sampling import CATALOG_OPTIONS

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True)

_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
_ALIAS_PATTERN = r"^[a-z0-9][a-z0-9._:-]*$"
_QUANT_PATTERN = r"^[A-Za-z0-9_]+$"
_REPO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+$"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

DEFAULT_QUANT = "Q4_K_M"


class Architecture(BaseModel):
    """Shape numbers from the model's config.json (the GGUF header carries the same)."""

    model_config = _MODEL_CONFIG

    gguf_arch: str = Field(min_length=1, description="llama.cpp architecture name, e.g. qwen2")
    layers: int = Field(gt=0, description="transformer blocks (block_count)")
    hidden_size: int = Field(gt=0, description="embedding length")
    heads: int = Field(gt=0, description="attention (query) heads")
    kv_heads: int = Field(gt=0, description="key/value heads (GQA)")
    head_dim: int = Field(gt=0, description="size of one attention head")
    context_length: int = Field(gt=0, description="native context (max_position_embeddings)")
    vocab_size: int = Field(gt=0)

    @field_validator("kv_heads")
    @classmethod
    def _kv_heads_divide_heads(cls, value: int, info: ValidationInfo) -> int:
        heads = info.data.get("heads")
        if isinstance(heads, int) and heads % value:
            raise ValueError(f"{value} KV heads do not divide {heads} attention heads")
        return value

    def kv_cache_bytes_per_token(self, bytes_per_element: float = 2.0) -> int:
        """K and V for one token across all layers (f16 by default)."""
        return int(2 * self.layers * self.kv_heads * self.head_dim * bytes_per_element)


def _sampling_model() -> type[BaseModel]:
    """The catalog's ``sampling`` table, built from :mod:`ponder.sampling`'s options, so a
    bound is declared once: a catalog entry is held to the same limits as a flag."""
    fields: dict[str, Any] = {
        o.name: (
            o.kind,
            Field(default=o.default, ge=o.ge, gt=o.gt, le=o.le, description=o.help),
        )
        for o in CATALOG_OPTIONS
    }
    return create_model("Sampling", __config__=_MODEL_CONFIG, **fields)


if TYPE_CHECKING:

    class Sampling(BaseModel):
        """Recommended sampler settings (one attribute per catalog option)."""

        def __getattr__(self, name: str) -> float: ...

else:
    Sampling = _sampling_model()


class PromptPolicy(BaseModel):
    """How to build a prompt for the model.

    The defaults suit a model that needs nothing special (TOML cannot write None, so an
    omitted ``think_prefill`` has to mean "none"); the catalog spells out the DeepSeek-R1
    policy (no system prompt, ``<think>\n`` prefill) for each model that needs it.
    """

    model_config = _MODEL_CONFIG

    system_prompt: bool = Field(
        default=True,
        description="whether the model takes a system prompt; if not, fold it into the user turn",
    )
    think_prefill: str | None = Field(
        default=None,
        description="the reply must start with this; appended unless the template already ends "
        "with it (the stream then starts inside reasoning). Empty or omitted: none",
    )
    strip_reasoning_in_history: bool = Field(
        default=True, description="earlier assistant turns go back without their reasoning"
    )
    chat_template: str | None = Field(
        default=None, min_length=1, description="Jinja template overriding the GGUF's own"
    )

    @field_validator("think_prefill")
    @classmethod
    def _empty_means_none(cls, value: str | None) -> str | None:
        return value or None


class QuantEntry(BaseModel):
    """One downloadable quantization: where it lives, how big it is, what it hashes to."""

    model_config = _MODEL_CONFIG

    quant: str = Field(pattern=_QUANT_PATTERN, description="llama.cpp quant name, e.g. Q4_K_M")
    repo: str = Field(pattern=_REPO_PATTERN, description="Hugging Face repo id")
    revision: str = Field(default="main", pattern=r"^\S+$", description="branch, tag or commit")
    files: list[str] = Field(min_length=1, description="paths in the repo; first one is loaded")
    size_bytes: int = Field(gt=0, description="total size of all files")
    size_exact: bool = Field(default=False, description="false: rounded from the Hub's GB figure")
    sha256: list[str] | None = Field(default=None, description="one digest per file, if known")

    @field_validator("files")
    @classmethod
    def _valid_files(cls, files: list[str]) -> list[str]:
        for path in files:
            _check_repo_path(path)
        if len(set(files)) != len(files):
            raise ValueError("a file is listed twice")
        _check_shards(files)
        return files

    @field_validator("sha256")
    @classmethod
    def _valid_hashes(cls, hashes: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if hashes is None:
            return None
        hashes = [digest.lower() for digest in hashes]
        bad = [digest for digest in hashes if not _SHA256.match(digest)]
        if bad:
            raise ValueError(f"'{bad[0]}' is not a sha256 hex digest (64 hex digits)")
        files = info.data.get("files")
        if files is not None and len(files) != len(hashes):
            raise ValueError(f"{len(hashes)} digests for {len(files)} files (give one per file)")
        return hashes

    @property
    def primary_file(self) -> str:
        """The file llama.cpp opens; with split shards it finds the rest beside it."""
        return self.files[0]

    @property
    def is_split(self) -> bool:
        return len(self.files) > 1


class ModelEntry(BaseModel):
    """One model of the catalog with all its quantizations."""

    model_config = _MODEL_CONFIG

    id: str = Field(pattern=_ID_PATTERN, description="stable id, e.g. r1-distill-qwen-7b")
    name: str = Field(min_length=1, description="display name")
    family: str = Field(default="custom", min_length=1)
    params: str | None = Field(default=None, description="parameter count, e.g. 7B")
    aliases: list[str] = Field(default_factory=list, description="short references, e.g. r1:7b")
    license: str | None = None
    upstream: str | None = Field(default=None, description="the original (unquantized) repo")
    arch: Architecture | None = Field(default=None, description="None: read the GGUF header")
    sampling: Sampling = Field(default_factory=Sampling)
    prompt: PromptPolicy = Field(default_factory=PromptPolicy)
    quants: list[QuantEntry] = Field(alias="quant", min_length=1)
    default_quant: str = Field(default=DEFAULT_QUANT, pattern=_QUANT_PATTERN)

    @field_validator("aliases")
    @classmethod
    def _valid_aliases(cls, aliases: list[str], info: ValidationInfo) -> list[str]:
        pattern = re.compile(_ALIAS_PATTERN)
        seen: set[str] = {str(info.data.get("id", ""))}
        for alias in aliases:
            if not pattern.match(alias):
                raise ValueError(f"alias '{alias}' must be lower-case letters, digits, '.:_-'")
            if alias in seen:
                raise ValueError(f"alias '{alias}' is listed twice or repeats the id")
            seen.add(alias)
        return aliases

    @field_validator("quants")
    @classmethod
    def _unique_quants(cls, quants: list[QuantEntry]) -> list[QuantEntry]:
        seen: set[str] = set()
        for entry in quants:
            key = entry.quant.upper()
            if key in seen:
                raise ValueError(f"quant '{entry.quant}' is listed twice")
            seen.add(key)
        return quants

    @field_validator("default_quant")
    @classmethod
    def _default_quant_exists(cls, value: str, info: ValidationInfo) -> str:
        quants: list[QuantEntry] | None = info.data.get("quants")
        if quants is None:  # the quant list itself failed; that error is reported instead
            return value
        match = _find_quant(quants, value)
        if match is None:
            raise ValueError(f"'{value}' is not one of this model's quants ({_names(quants)})")
        return match.quant

    @property
    def short_name(self) -> str:
        """What to show a user: the first alias, or the id when there is none."""
        return self.aliases[0] if self.aliases else self.id

    @property
    def quant_names(self) -> list[str]:
        return [entry.quant for entry in self.quants]

    def quant(self, name: str) -> QuantEntry | None:
        """The quant called ``name`` (case-insensitive), or None."""
        return _find_quant(self.quants, name)

    @property
    def default(self) -> QuantEntry:
        """The entry named by ``default_quant`` (validation guarantees it exists)."""
        return self.quant(self.default_quant) or self.quants[0]


class _CatalogFile(BaseModel):
    """The whole TOML document: a list of ``[[model]]`` tables."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: list[ModelEntry] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A model reference resolved to one catalog entry and one of its quants."""

    model: ModelEntry
    quant: QuantEntry

    @property
    def display_ref(self) -> str:
        """A reference that resolves back to this, e.g. ``r1:7b@Q4_K_M``."""
        return f"{self.model.short_name}@{self.quant.quant}"

    @property
    def primary_file(self) -> str:
        return self.quant.primary_file

    @property
    def files(self) -> list[str]:
        return list(self.quant.files)

    @property
    def size_bytes(self) -> int:
        return self.quant.size_bytes


class Catalog:
    """The models Ponder knows, in catalog order, with lookup by id or alias."""

    def __init__(self, models: Iterable[ModelEntry]) -> None:
        self._models = list(models)
        self._index = _build_index([(entry, "catalog") for entry in self._models])

    @property
    def models(self) -> list[ModelEntry]:
        return list(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._models)

    def names(self) -> list[str]:
        """Every id and alias a user may type, in catalog order."""
        return list(self._index)

    def get(self, model_id: str) -> ModelEntry | None:
        """The entry with this id (case-insensitive), or None. Aliases are not matched."""
        key = model_id.strip().lower()
        return next((entry for entry in self._models if entry.id == key), None)

    def resolve(self, ref: str, preferred_quant: str | None = None) -> Resolved:
        """Resolve ``name[@QUANT]`` (id or alias, case-insensitive).

        Without ``@QUANT`` the quant is ``preferred_quant`` when the model has it (the
        hardware planner's pick), else the model's ``default_quant``. An explicit
        ``@QUANT`` the model lacks is an error; a preference it lacks is not.
        """
        name, at, quant_name = ref.strip().partition("@")
        model = self._lookup(name.strip())
        if at:
            return Resolved(model, self._explicit_quant(model, quant_name.strip()))
        preferred = model.quant(preferred_quant) if preferred_quant else None
        return Resolved(model, preferred or model.default)

    def _lookup(self, name: str) -> ModelEntry:
        entry = self._index.get(name.lower())
        if entry is not None:
            return entry
        message = f"unknown model '{name}'" if name else "no model given"
        raise ModelNotFoundError(message, hint=self._suggest(name.lower()))

    def _suggest(self, name: str) -> str:
        matches = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
        if not matches:
            return "`ponder list` shows the catalog"
        if len(matches) == 1:
            return f"did you mean {matches[0]}?"
        return f"did you mean {', '.join(matches[:-1])} or {matches[-1]}?"

    @staticmethod
    def _explicit_quant(model: ModelEntry, quant_name: str) -> QuantEntry:
        entry = model.quant(quant_name) if quant_name else None
        if entry is not None:
            return entry
        what = f"no quant '{quant_name}'" if quant_name else "no quant named after '@'"
        raise ModelNotFoundError(
            f"model '{model.id}': {what}",
            hint=f"available quants: {_names(model.quants)}",
        )


# ----------------------------------------------------------------------------- loading


def load_catalog(user_catalog: Path | None = None) -> Catalog:
    """Load the shipped catalog and merge ``user_catalog`` over it when that file exists."""
    text, source = _read_builtin()
    entries = [(entry, source) for entry in parse_catalog(text, source)]
    if user_catalog is not None and user_catalog.exists():
        user_source = str(user_catalog)
        user_entries = parse_catalog(_read_file(user_catalog), user_source)
        entries = _merge(entries, [(entry, user_source) for entry in user_entries])
    return Catalog(entry for entry, _ in entries)


def parse_catalog(text: str, source: str) -> list[ModelEntry]:
    """Parse and validate one catalog document; ``source`` names it in error messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from None
    try:
        models = _CatalogFile.model_validate(raw).model
    except ValidationError as exc:
        raise CatalogError(_describe(source, raw, exc)) from None
    _build_index([(entry, source) for entry in models])
    return models


def _read_builtin() -> tuple[str, str]:
    packaged = resources.files("ponder") / "models.toml"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8"), str(packaged)
    checkout = Path(__file__).resolve().parents[2] / "models.toml"
    if checkout.is_file():
        return _read_file(checkout), str(checkout)
    raise CatalogError(
        "the built-in models.toml is missing from this installation", hint="reinstall ponder"
    )


def _read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CatalogError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror or exc}") from None


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


def _build_index(entries: Sequence[tuple[ModelEntry, str]]) -> dict[str, ModelEntry]:
    """Map every id and alias to its entry; a name used twice is a CatalogError."""
    index: dict[str, ModelEntry] = {}
    for entry, source in entries:
        names = [(entry.id, "id")] + [(alias, "aliases") for alias in entry.aliases]
        for name, field in names:
            owner = index.get(name)
            if owner is not None:
                what = "id" if field == "id" else "alias"
                raise CatalogError(
                    f"{source}: model '{entry.id}': field '{field}': "
                    f"{what} '{name}' is already used by model '{owner.id}'"
                )
            index[name] = entry
    return index


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


# ------------------------------------------------------------------------ helpers


def _find_quant(quants: Iterable[QuantEntry], name: str) -> QuantEntry | None:
    key = name.strip().upper()
    return next((entry for entry in quants if entry.quant.upper() == key), None)


def _names(quants: Iterable[QuantEntry]) -> str:
    return ", ".join(entry.quant for entry in quants)


def _check_repo_path(path: str) -> None:
    parts = path.split("/")
    if not path.endswith(".gguf"):
        raise ValueError(f"'{path}' is not a .gguf file")
    if path.startswith("/") or "\\" in path or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"'{path}' is not a plain relative path inside the repo")


def _check_shards(files: list[str]) -> None:
    """Split GGUFs must be listed in order as ``…-0000k-of-0000N.gguf``, all N of them."""
    for position, path in enumerate(files, start=1):
        shard = shards.parse(path)
        if shard is None:
            if len(files) > 1:
                raise ValueError(f"'{path}' is not named like a split shard (-00001-of-0000N)")
            continue
        number, total = shard.number, shard.count
        if number != position or total != len(files):
            raise ValueError(
                f"'{path}' is shard {number} of {total}, "
                f"but is listed at position {position} of {len(files)}"
            )
