"""The catalog's schema: the pydantic models one ``[[model]]`` table validates into.

:class:`Architecture`, the generated :class:`Sampling` (built from
:mod:`ponder.sampling`'s options), :class:`PromptPolicy`, :class:`QuantEntry` and
:class:`ModelEntry`, with the validators that hold an entry to its rules (patterns, hashes,
shard order, unique aliases and quants, a default quant that exists). Strict and
``extra="forbid"``: a typo is an error, never ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
)

from ponder import shards
from ponder.paths import repo_id_problem, repo_path_problem
from ponder.sampling import CATALOG_OPTIONS

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True)

_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
_ALIAS_PATTERN = r"^[a-z0-9][a-z0-9._:-]*$"
_QUANT_PATTERN = r"^[A-Za-z0-9_]+$"
_REPO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+$"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

DEFAULT_QUANT = "Q4_K_M"

# Upper bounds on an architecture, far above any model (Llama 3.1 405B: 126 layers,
# hidden 16,384, 128 heads; Gemma 3: a 262,144-token vocabulary; Llama 4 Scout: a
# 10M-token context). They keep a user's catalog from asking the planner to spread a
# file over a billion layers (`ponder fit` ran past 60 s) or to reckon in numbers no
# memory holds.
ARCH_LIMITS = {
    "layers": 1024,
    "hidden_size": 1 << 20,
    "heads": 1 << 14,
    "kv_heads": 1 << 14,
    "head_dim": 1 << 14,
    "context_length": 1 << 28,
    "vocab_size": 1 << 24,
}
MAX_SIZE_BYTES = 1 << 50  # 1 PiB: a model file set larger than any disk
MAX_QUANTS = 64  # per model; the shipped catalog has at most 5


class Architecture(BaseModel):
    """Shape numbers from the model's config.json (the GGUF header carries the same)."""

    model_config = _MODEL_CONFIG

    gguf_arch: str = Field(min_length=1, description="llama.cpp architecture name, e.g. qwen2")
    layers: int = Field(
        gt=0, le=ARCH_LIMITS["layers"], description="transformer blocks (block_count)"
    )
    hidden_size: int = Field(gt=0, le=ARCH_LIMITS["hidden_size"], description="embedding length")
    heads: int = Field(gt=0, le=ARCH_LIMITS["heads"], description="attention (query) heads")
    kv_heads: int = Field(gt=0, le=ARCH_LIMITS["kv_heads"], description="key/value heads (GQA)")
    head_dim: int = Field(
        gt=0, le=ARCH_LIMITS["head_dim"], description="size of one attention head"
    )
    context_length: int = Field(
        gt=0,
        le=ARCH_LIMITS["context_length"],
        description="native context (max_position_embeddings)",
    )
    vocab_size: int = Field(gt=0, le=ARCH_LIMITS["vocab_size"])

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
    budget_bridge: str | None = Field(
        default=None,
        min_length=1,
        max_length=400,
        description="a sentence put before the end of the thinking when a thinking budget "
        "closes it, so the model reads the cut as its own decision",
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
    size_bytes: int = Field(gt=0, le=MAX_SIZE_BYTES, description="total size of all files")
    size_exact: bool = Field(default=False, description="false: rounded from the Hub's GB figure")
    sha256: list[str] | None = Field(default=None, description="one digest per file, if known")

    @field_validator("repo")
    @classmethod
    def _valid_repo(cls, repo: str) -> str:
        problem = repo_id_problem(repo)  # the pattern lets "x/.." through; the Hub does not
        if problem:
            raise ValueError(f"'{repo}' is not a Hub repo id: {problem}")
        return repo

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
    quants: list[QuantEntry] = Field(alias="quant", min_length=1, max_length=MAX_QUANTS)
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


# ------------------------------------------------------------------------ helpers


def _find_quant(quants: Iterable[QuantEntry], name: str) -> QuantEntry | None:
    key = name.strip().upper()
    return next((entry for entry in quants if entry.quant.upper() == key), None)


def _names(quants: Iterable[QuantEntry]) -> str:
    return ", ".join(entry.quant for entry in quants)


def _check_repo_path(path: str) -> None:
    if not path.endswith(".gguf"):
        raise ValueError(f"'{path}' is not a .gguf file")
    if repo_path_problem(path):
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
