""":class:`GGUFInfo` and :func:`inspect`: the facts Ponder needs, built from the headers.

Architecture, layer and head counts, trained context, chat template, special tokens, and
tensor bytes per layer and per ggml type, summed over every shard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gguf import Keys, LlamaFileType

from ponder.errors import GGUFError
from ponder.gguf_info import sanity
from ponder.gguf_info.header import _HINT_REDOWNLOAD, _Header, _read_header
from ponder.gguf_info.meta import _Meta, _missing_key
from ponder.gguf_info.split import _read_shards
from ponder.gguf_info.values import _Array

MAX_LAYERS = 1 << 16  # far above any real model; a larger block_count is corruption
_BLOCK_TENSOR = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class GGUFInfo:
    """What Ponder knows about a model file without loading its weights."""

    path: Path
    file_size: int  # bytes on disk, all shards together
    architecture: str  # general.architecture, e.g. "qwen2", "llama", "gemma3"
    name: str | None  # general.name
    file_type: str | None  # quantization from general.file_type, e.g. "Q4_K_M"
    n_layer: int
    n_ctx_train: int
    n_embd: int
    n_head: int  # 0 when the model has no attention heads
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_vocab: int  # 0 when the file carries no vocabulary
    chat_template: str | None
    bos_token: str | None
    eos_token: str | None
    add_bos_token: bool | None
    split_count: int
    layer_bytes: tuple[int, ...]  # tensor bytes of blk.N.* for N in range(n_layer)
    other_bytes: int  # every other tensor: token_embd, output, output_norm, ...
    # Bytes of the blk.* tensors by ggml type, e.g. (("Q4_K", 12_660_000), ("Q5_0", ...)):
    # a "Q4_K_M" file mixes types, and llama.cpp's CPU repacking depends on the type.
    layer_type_bytes: tuple[tuple[str, int], ...] = ()

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of K and V cache per token of context, at f16."""
        return self.n_layer * self.n_head_kv * (self.head_dim_k + self.head_dim_v) * 2


def _architecture(header: _Header) -> str:
    arch = header.kv.get(Keys.General.ARCHITECTURE)
    if arch is None:
        raise _missing_key(header.path, Keys.General.ARCHITECTURE)
    if not isinstance(arch, str) or not arch:
        raise GGUFError(
            f"corrupt GGUF header in {header.path}: {Keys.General.ARCHITECTURE} is {arch!r}",
            hint=_HINT_REDOWNLOAD,
        )
    return arch


def _file_type_name(value: int | None) -> str | None:
    if value is None:
        return None
    try:
        name = LlamaFileType(value).name
    except ValueError:
        return None
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def _layer_bytes(headers: list[_Header], n_layer: int) -> tuple[tuple[int, ...], int]:
    """Sum tensor bytes per block index; the rest (and any blk.N past n_layer) is other."""
    layers = [0] * n_layer
    other = 0
    for header in headers:
        for tensor in header.tensors:
            match = _BLOCK_TENSOR.match(tensor.name)
            index = int(match.group(1)) if match else n_layer
            if index < n_layer:
                layers[index] += tensor.n_bytes
            else:
                other += tensor.n_bytes
    return tuple(layers), other


def _layer_type_bytes(headers: list[_Header]) -> tuple[tuple[str, int], ...]:
    totals: dict[str, int] = {}
    for header in headers:
        for tensor in header.tensors:
            if _BLOCK_TENSOR.match(tensor.name):
                totals[tensor.type_name] = totals.get(tensor.type_name, 0) + tensor.n_bytes
    return tuple(sorted(totals.items()))


def _vocab_size(header: _Header, meta: _Meta) -> int:
    tokens = header.kv.get(Keys.Tokenizer.LIST)
    if isinstance(tokens, _Array):
        return tokens.count
    return meta.get_int(Keys.LLM.VOCAB_SIZE) or 0


def _token(header: _Header, meta: _Meta, template: str) -> str | None:
    token_id = meta.get_int(template)
    return None if token_id is None else header.tokens.get(token_id)


def _build(headers: list[_Header]) -> GGUFInfo:
    first = headers[0]
    meta = _Meta(first.path, first.kv, _architecture(first))
    sanity.check(first, meta, headers)
    n_layer = meta.required_int(Keys.LLM.BLOCK_COUNT, limit=MAX_LAYERS)
    n_embd = meta.required_int(Keys.LLM.EMBEDDING_LENGTH)
    n_head = meta.get_layer_max(Keys.Attention.HEAD_COUNT) or 0
    n_head_kv = meta.get_layer_max(Keys.Attention.HEAD_COUNT_KV)
    head_dim = n_embd // n_head if n_head else 0
    layer_bytes, other_bytes = _layer_bytes(headers, n_layer)
    return GGUFInfo(
        path=first.path,
        file_size=sum(h.file_size for h in headers),
        architecture=meta.arch,
        name=meta.get_str(Keys.General.NAME),
        file_type=_file_type_name(meta.get_int(Keys.General.FILE_TYPE)),
        n_layer=n_layer,
        n_ctx_train=meta.required_int(Keys.LLM.CONTEXT_LENGTH),
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head if n_head_kv is None else n_head_kv,
        head_dim_k=meta.get_int(Keys.Attention.KEY_LENGTH) or head_dim,
        head_dim_v=meta.get_int(Keys.Attention.VALUE_LENGTH) or head_dim,
        n_vocab=_vocab_size(first, meta),
        chat_template=meta.get_str(Keys.Tokenizer.CHAT_TEMPLATE),
        bos_token=_token(first, meta, Keys.Tokenizer.BOS_ID),
        eos_token=_token(first, meta, Keys.Tokenizer.EOS_ID),
        add_bos_token=meta.get_bool(Keys.Tokenizer.ADD_BOS),
        split_count=len(headers),
        layer_bytes=layer_bytes,
        other_bytes=other_bytes,
        layer_type_bytes=_layer_type_bytes(headers),
    )


def inspect(path: Path | str) -> GGUFInfo:
    """Read a GGUF file's header (and its sibling shards'); raise GGUFError if unusable."""
    return _build(_read_shards(_read_header(Path(path))))
