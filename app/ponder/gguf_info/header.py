"""One GGUF file's header: magic, version, metadata, tensor infos, and where the data ends.

The checks mirror llama.cpp's loader (``gguf.cpp``); :func:`_read_header` opens and maps
one file and turns every failure (missing, a directory, empty, truncated, corrupt) into a
:class:`~ponder.errors.GGUFError` with one clear line.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from gguf import (
    GGML_QUANT_SIZES,
    GGUF_DEFAULT_ALIGNMENT,
    GGUF_MAGIC,
    GGMLQuantizationType,
    GGUFValueType,
    Keys,
)

from ponder.errors import GGUFError
from ponder.gguf_info.values import (
    _U32,
    Value,
    _Array,
    _Corrupt,
    _Cursor,
    _read_value,
    _strings_at,
    _Truncated,
    _value_type,
)

SUPPORTED_VERSIONS = (2, 3)
MAX_DIMS = 4  # GGML_MAX_DIMS
_HINT_REDOWNLOAD = "download the model again"


@dataclass(frozen=True)
class _Tensor:
    name: str
    n_bytes: int
    type_name: str  # ggml type, e.g. "Q4_K"
    n_dims: int = 1  # as ggml counts them: trailing dimensions of 1 do not count


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
        tensors.append(_Tensor(name, n_bytes, GGMLQuantizationType(raw_type).name, _n_dims(dims)))
        expected_offset = _align(offset + n_bytes, alignment)
    return tensors


def _n_dims(dims: list[int]) -> int:
    while len(dims) > 1 and dims[-1] == 1:
        dims = dims[:-1]
    return len(dims)


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
