"""Read what Ponder needs from a GGUF header, and refuse a bad file with one clear line.

The facts (architecture, layer and head counts, trained context, chat template,
tensor bytes per layer) drive the prompt policy and the offload planner, and a
broken download must be caught here, before llama.cpp sees it.

Why not ``gguf.GGUFReader``: it builds a numpy view for every element of every
metadata array. On Gemma 3 270M (262,144 tokens, each with a score and a type)
that took 12.5 s here, against a budget of ~0.3 s. So this module walks the
header itself with :mod:`struct` over an ``mmap``: arrays it does not need are
skipped by length, strings are decoded only when wanted, and no tensor data is
touched. The ``gguf`` package still provides the format's constants (magic,
value types, quantization block sizes, key names, file type names).

The checks mirror llama.cpp's loader (``gguf.cpp``): magic, version 2 or 3,
little-endian, every read inside the file, known value and tensor types, at
most four dimensions, tensor offsets contiguous and aligned, and a data region
that ends inside the file (otherwise the file is reported as truncated, with
the number of bytes missing). For a split model (``split.count`` > 1) the path
must be the first shard, ``NAME-00001-of-0000N.gguf``; every shard's header is
read, so ``file_size`` and ``layer_bytes`` cover the whole model.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gguf import (
    GGML_QUANT_SIZES,
    GGUF_DEFAULT_ALIGNMENT,
    GGUF_MAGIC,
    GGMLQuantizationType,
    GGUFValueType,
    Keys,
    LlamaFileType,
)

from ponder import shards
from ponder.errors import GGUFError

SUPPORTED_VERSIONS = (2, 3)
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_LAYERS = 1 << 16  # far above any real model; a larger block_count is corruption
_HINT_REDOWNLOAD = "download the model again"
_BLOCK_TENSOR = re.compile(r"^blk\.(\d+)\.")

_SCALARS: dict[GGUFValueType, struct.Struct] = {
    GGUFValueType.UINT8: struct.Struct("<B"),
    GGUFValueType.INT8: struct.Struct("<b"),
    GGUFValueType.UINT16: struct.Struct("<H"),
    GGUFValueType.INT16: struct.Struct("<h"),
    GGUFValueType.UINT32: struct.Struct("<I"),
    GGUFValueType.INT32: struct.Struct("<i"),
    GGUFValueType.FLOAT32: struct.Struct("<f"),
    GGUFValueType.BOOL: struct.Struct("<?"),
    GGUFValueType.UINT64: struct.Struct("<Q"),
    GGUFValueType.INT64: struct.Struct("<q"),
    GGUFValueType.FLOAT64: struct.Struct("<d"),
}
_U32 = _SCALARS[GGUFValueType.UINT32]
_U64 = _SCALARS[GGUFValueType.UINT64]


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


# -- low-level reading ------------------------------------------------------------


class _Truncated(Exception):
    """A read ran past the end of the file."""


class _Corrupt(Exception):
    """The header holds something no valid GGUF file holds."""


@dataclass(frozen=True)
class _Array:
    """A large or string metadata array, kept as a position: skipping it costs little."""

    item_type: GGUFValueType
    count: int
    offset: int  # first item


Number = int | float | bool
Value = Number | str | tuple[Number, ...] | _Array
_SMALL_ARRAY = 4096  # numeric arrays up to this length are read (per-layer values)
T = TypeVar("T")


class _Cursor:
    """Bounds-checked little-endian reads from a buffer."""

    def __init__(self, buf: mmap.mmap, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def take(self, n: int) -> int:
        """Advance by ``n`` bytes and return where they start."""
        start, end = self.pos, self.pos + n
        if end > len(self.buf):
            raise _Truncated
        self.pos = end
        return start

    def scalar(self, fmt: struct.Struct) -> Number:
        value: Number = fmt.unpack_from(self.buf, self.take(fmt.size))[0]
        return value

    def u32(self) -> int:
        return int(self.scalar(_U32))

    def u64(self) -> int:
        return int(self.scalar(_U64))

    def raw_string(self) -> bytes:
        n = self.u64()
        start = self.take(n)
        return self.buf[start : start + n]

    def string(self, what: str) -> str:
        raw = self.raw_string()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Corrupt(f"{what} is not valid UTF-8") from None

    def skip_string(self) -> None:
        self.take(self.u64())


def _value_type(raw: int, key: str) -> GGUFValueType:
    try:
        return GGUFValueType(raw)
    except ValueError:
        raise _Corrupt(f"key {key!r} has unknown value type {raw}") from None


def _read_value(cur: _Cursor, vtype: GGUFValueType, key: str) -> Value:
    if vtype is GGUFValueType.STRING:
        return cur.string(f"the value of {key!r}")
    if vtype is GGUFValueType.ARRAY:
        item_type = _value_type(cur.u32(), key)
        count = cur.u64()
        if item_type in _SCALARS and count <= _SMALL_ARRAY:
            return tuple(cur.scalar(_SCALARS[item_type]) for _ in range(count))
        array = _Array(item_type, count, cur.pos)
        _skip_items(cur, item_type, count, key)
        return array
    return cur.scalar(_SCALARS[vtype])


def _skip_items(cur: _Cursor, item_type: GGUFValueType, count: int, key: str) -> None:
    if item_type in _SCALARS:
        cur.take(count * _SCALARS[item_type].size)
    elif item_type is GGUFValueType.STRING:
        buf, pos, end, unpack = cur.buf, cur.pos, len(cur.buf), _U64.unpack_from
        for _ in range(count):
            if pos + 8 > end:
                raise _Truncated
            pos += 8 + unpack(buf, pos)[0]
        cur.pos = pos
        cur.take(0)  # the last string may end past the file
    else:
        for _ in range(count):
            _skip_items(cur, _value_type(cur.u32(), key), cur.u64(), key)


def _strings_at(buf: mmap.mmap, array: _Array, wanted: set[int]) -> dict[int, str]:
    """Decode the items of a string array at the ``wanted`` indices."""
    found: dict[int, str] = {}
    pos, unpack = array.offset, _U64.unpack_from
    for index in range(min(max(wanted, default=-1) + 1, array.count)):
        n = unpack(buf, pos)[0]
        if index in wanted:
            found[index] = buf[pos + 8 : pos + 8 + n].decode("utf-8", errors="replace")
        pos += 8 + n
    return found


# -- the header -------------------------------------------------------------------


@dataclass(frozen=True)
class _Tensor:
    name: str
    n_bytes: int
    type_name: str  # ggml type, e.g. "Q4_K"


@dataclass(frozen=True)
class _Header:
    path: Path
    file_size: int
    kv: dict[str, Value]
    tensors: tuple[_Tensor, ...]
    tokens: dict[int, str]  # the token strings Ponder asked for (bos, eos)


def _read_kv(cur: _Cursor, count: int) -> dict[str, Value]:
    kv: dict[str, Value] = {}
    for _ in range(count):
        key = cur.string("a metadata key")
        if key in kv:
            raise _Corrupt(f"duplicate key {key!r}")
        kv[key] = _read_value(cur, _value_type(cur.u32(), key), key)
    return kv


def _tensor_bytes(name: str, dims: list[int], raw_type: int) -> int:
    try:
        ggml_type = GGMLQuantizationType(raw_type)
        block_size, type_size = GGML_QUANT_SIZES[ggml_type]
    except (ValueError, KeyError):
        raise _Corrupt(f"tensor {name!r} has unknown type {raw_type}") from None
    if dims[0] % block_size:
        raise _Corrupt(f"tensor {name!r}: {dims[0]} is not a multiple of {block_size}")
    n_bytes = dims[0] // block_size * type_size
    for dim in dims[1:]:
        n_bytes *= dim
    return n_bytes


def _read_tensor_infos(cur: _Cursor, count: int, alignment: int) -> list[_Tensor]:
    """Read the tensor infos, checking offsets the way llama.cpp does."""
    tensors: list[_Tensor] = []
    names: set[str] = set()
    expected_offset = 0
    for _ in range(count):
        name = cur.string("a tensor name")
        n_dims = cur.u32()
        if not 1 <= n_dims <= MAX_DIMS:
            raise _Corrupt(f"tensor {name!r} has {n_dims} dimensions")
        dims = [cur.u64() for _ in range(n_dims)]
        raw_type = cur.u32()
        n_bytes = _tensor_bytes(name, dims, raw_type)
        offset = cur.u64()
        if name in names:
            raise _Corrupt(f"duplicate tensor {name!r}")
        if offset != expected_offset:
            raise _Corrupt(f"tensor {name!r} at offset {offset}, expected {expected_offset}")
        names.add(name)
        tensors.append(_Tensor(name, n_bytes, GGMLQuantizationType(raw_type).name))
        expected_offset = _align(offset + n_bytes, alignment)
    return tensors


def _align(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def _alignment(kv: dict[str, Value]) -> int:
    alignment = kv.get(Keys.General.ALIGNMENT, GGUF_DEFAULT_ALIGNMENT)
    if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
        raise _Corrupt(f"{Keys.General.ALIGNMENT} is {alignment!r}, not a power of two")
    return alignment


def _data_end(cur: _Cursor, tensors: list[_Tensor], alignment: int) -> int:
    """Where the last tensor's data ends (the header's end when there are none)."""
    data_offset = _align(cur.pos, alignment)
    if not tensors:
        return cur.pos
    last_offset = sum(_align(t.n_bytes, alignment) for t in tensors[:-1])
    return data_offset + last_offset + tensors[-1].n_bytes


def _check_magic(path: Path, buf: mmap.mmap) -> None:
    head = buf[:8]
    if len(head) >= 4 and _U32.unpack_from(head)[0] == GGUF_MAGIC:
        return
    if head.startswith(b"version "):
        raise GGUFError(
            f"{path} is a Git LFS pointer, not a GGUF file",
            hint="fetch the real file (git lfs pull) or download the .gguf again",
        )
    raise GGUFError(
        f"{path} is not a GGUF file (it starts with {head!r})", hint="download a .gguf model"
    )


def _check_version(path: Path, version: int) -> None:
    if version in SUPPORTED_VERSIONS:
        return
    if version and not version & 0xFFFF:
        raise GGUFError(
            f"{path} is a big-endian GGUF file, which llama.cpp cannot load here",
            hint="download the little-endian file",
        )
    raise GGUFError(
        f"{path} is GGUF version {version}; only versions 2 and 3 are supported",
        hint="download a current .gguf of this model",
    )


def _parse(path: Path, buf: mmap.mmap, file_size: int) -> _Header:
    _check_magic(path, buf)
    cur = _Cursor(buf, 4)
    _check_version(path, cur.u32())
    n_tensors, n_kv = cur.u64(), cur.u64()
    kv = _read_kv(cur, n_kv)
    alignment = _alignment(kv)
    tensors = _read_tensor_infos(cur, n_tensors, alignment)
    data_end = _data_end(cur, tensors, alignment)
    if data_end > file_size:
        missing = data_end - file_size
        raise GGUFError(
            f"{path} is truncated: {missing:,} bytes missing "
            f"(the tensor data ends at byte {data_end:,}, the file has {file_size:,})",
            hint=_HINT_REDOWNLOAD,
        )
    return _Header(path, file_size, kv, tuple(tensors), _wanted_tokens(buf, kv))


def _wanted_tokens(buf: mmap.mmap, kv: dict[str, Value]) -> dict[int, str]:
    tokens = kv.get(Keys.Tokenizer.LIST)
    if not isinstance(tokens, _Array) or tokens.item_type is not GGUFValueType.STRING:
        return {}
    wanted = {kv.get(Keys.Tokenizer.BOS_ID), kv.get(Keys.Tokenizer.EOS_ID)}
    return _strings_at(buf, tokens, {i for i in wanted if type(i) is int and i >= 0})


def _read_header(path: Path) -> _Header:
    """Open, map and parse one file; every failure becomes a GGUFError."""
    try:
        with path.open("rb") as file:
            size = _file_size(path, file.fileno())
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(path, buf, size)
    except FileNotFoundError:
        raise GGUFError(f"no such file: {path}", hint="check the path") from None
    except IsADirectoryError:
        raise _directory_error(path) from None
    except PermissionError:
        if path.is_dir():  # Windows refuses to open a directory this way
            raise _directory_error(path) from None
        raise
    except _Truncated:
        raise GGUFError(
            f"{path} is truncated: the GGUF header runs past the end of the file",
            hint=_HINT_REDOWNLOAD,
        ) from None
    except (_Corrupt, ValueError, OverflowError, struct.error) as exc:
        raise GGUFError(f"corrupt GGUF header in {path}: {exc}", hint=_HINT_REDOWNLOAD) from None
    except OSError as exc:
        raise GGUFError(f"cannot read {path}: {exc.strerror or exc}") from None


def _file_size(path: Path, fileno: int) -> int:
    size = os.fstat(fileno).st_size
    if size == 0:
        raise GGUFError(f"{path} is empty (0 bytes), not a GGUF file", hint=_HINT_REDOWNLOAD)
    return size


def _directory_error(path: Path) -> GGUFError:
    return GGUFError(
        f"{path} is a directory, not a GGUF file", hint="give the path of a .gguf file"
    )


# -- metadata to GGUFInfo ---------------------------------------------------------


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


# -- split models -----------------------------------------------------------------


def _split_count(header: _Header) -> int:
    meta = _Meta(header.path, header.kv, "")
    return meta.get_int(Keys.Split.LLM_KV_SPLIT_COUNT) or 1


def _shard_paths(first: _Header, count: int) -> list[Path]:
    """The paths of shards 2..count, from the first shard's name."""
    path = first.path
    number = _Meta(path, first.kv, "").get_int(Keys.Split.LLM_KV_SPLIT_NO) or 0
    shard = shards.parse(path.name)
    if number != 0 or shard is None or shard.number != 1 or shard.count != count:
        raise GGUFError(
            f"{path} is shard {number + 1} of a {count}-part split model; "
            f"give the first shard, named NAME-00001-of-{count:05d}.gguf",
            hint="llama.cpp finds the other shards from the first one's name",
        )
    return [path.with_name(name) for name in shard.names()[1:]]


def _read_shards(first: _Header) -> list[_Header]:
    count = _split_count(first)
    if count <= 1:
        return [first]
    headers = [first]
    for number, shard in enumerate(_shard_paths(first, count), start=2):
        if not shard.is_file():
            raise GGUFError(
                f"shard {number} of {count} of {first.path.name} is missing: {shard}",
                hint="download all the shards into the same folder",
            )
        header = _read_header(shard)
        if _Meta(shard, header.kv, "").get_int(Keys.Split.LLM_KV_SPLIT_NO) != number - 1:
            raise GGUFError(
                f"corrupt GGUF header in {shard}: it is not shard {number} of {count}",
                hint=_HINT_REDOWNLOAD,
            )
        headers.append(header)
    return headers


def inspect(path: Path | str) -> GGUFInfo:
    """Read a GGUF file's header (and its sibling shards'); raise GGUFError if unusable."""
    return _build(_read_shards(_read_header(Path(path))))
