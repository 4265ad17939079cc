"""Mutated copies of a real GGUF, for the hostile-file tests.

A byte map of the header (where each metadata value and each tensor's type lies) lets a
test change one thing, the way a damaged or hostile file would, and write the result:

* with the tensor data copied (``write``), for a file llama.cpp really opens;
* with the data left as a hole (``write_sparse``), for the checks that read only the
  header: a few hundred mutants then cost a few hundred small writes, not 250 MB each.

Changing a value's size (a string, an array, another type) moves the header's end, so the
data section is re-aligned; tensor offsets count from the data section, so they stay.
Written with :mod:`struct` rather than ``gguf.GGUFReader``, which takes 12 s on Gemma's
262k-token vocabulary.
"""

from __future__ import annotations

import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from gguf import GGUFValueType

_SIZES = {
    GGUFValueType.UINT8: 1,
    GGUFValueType.INT8: 1,
    GGUFValueType.UINT16: 2,
    GGUFValueType.INT16: 2,
    GGUFValueType.UINT32: 4,
    GGUFValueType.INT32: 4,
    GGUFValueType.FLOAT32: 4,
    GGUFValueType.BOOL: 1,
    GGUFValueType.UINT64: 8,
    GGUFValueType.INT64: 8,
    GGUFValueType.FLOAT64: 8,
}


@dataclass(frozen=True)
class Field:
    key: str
    start: int  # where the key's string starts
    type_at: int  # the value type (u32)
    end: int  # one past the value
    vtype: GGUFValueType


@dataclass(frozen=True)
class Tensor:
    name: str
    type_at: int  # the ggml type (u32)
    raw_type: int


@dataclass(frozen=True)
class Layout:
    header: bytes  # everything before the data section
    n_kv_at: int
    kv_end: int
    fields: dict[str, Field]
    tensors: list[Tensor]
    data_start: int
    data_len: int
    alignment: int


def _skip_value(buf: bytes, pos: int, vtype: GGUFValueType) -> int:
    if vtype is GGUFValueType.STRING:
        return pos + 8 + struct.unpack_from("<Q", buf, pos)[0]
    if vtype is GGUFValueType.ARRAY:
        item, count = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        item_type = GGUFValueType(item)
        if item_type in _SIZES:
            return pos + count * _SIZES[item_type]
        for _ in range(count):
            pos = _skip_value(buf, pos, item_type)
        return pos
    return pos + _SIZES[vtype]


def layout(path: Path) -> Layout:
    size = path.stat().st_size
    with path.open("rb") as file:
        buf = file.read(min(size, 64 << 20))
    return _layout(buf, size)


def _layout(buf: bytes, size: int) -> Layout:
    n_tensors, n_kv = struct.unpack_from("<QQ", buf, 8)
    pos = 24
    fields: dict[str, Field] = {}
    for _ in range(n_kv):
        start = pos
        n = struct.unpack_from("<Q", buf, pos)[0]
        key = buf[pos + 8 : pos + 8 + n].decode()
        pos += 8 + n
        vtype = GGUFValueType(struct.unpack_from("<I", buf, pos)[0])
        type_at = pos
        pos = _skip_value(buf, pos + 4, vtype)
        fields[key] = Field(key, start, type_at, pos, vtype)
    kv_end = pos
    tensors = []
    for _ in range(n_tensors):
        n = struct.unpack_from("<Q", buf, pos)[0]
        name = buf[pos + 8 : pos + 8 + n].decode()
        pos += 8 + n
        n_dims = struct.unpack_from("<I", buf, pos)[0]
        pos += 4 + 8 * n_dims
        tensors.append(Tensor(name, pos, struct.unpack_from("<I", buf, pos)[0]))
        pos += 4 + 8
    align_field = fields.get("general.alignment")
    alignment = 32
    if align_field is not None:
        alignment = struct.unpack_from("<I", buf, align_field.type_at + 4)[0]
    data_start = -(-pos // alignment) * alignment
    return Layout(buf[:pos], 16, kv_end, fields, tensors, data_start, size - data_start, alignment)


def shrunk(lay: Layout, n_tokens: int) -> Layout:
    """The same header with only the first ``n_tokens`` of the vocabulary (and their
    scores and types): the header checks then take a millisecond, not a tenth of a second.
    """
    header = lay.header
    for key in ("tokenizer.ggml.token_type", "tokenizer.ggml.scores", "tokenizer.ggml.tokens"):
        field = lay.fields[key]
        item, _count = struct.unpack_from("<IQ", header, field.type_at + 4)
        start = field.type_at + 16
        if GGUFValueType(item) is GGUFValueType.STRING:
            end = start
            for _ in range(n_tokens):
                end = _skip_value(header, end, GGUFValueType.STRING)
        else:
            end = start + n_tokens * _SIZES[GGUFValueType(item)]
        body = struct.pack("<IIQ", GGUFValueType.ARRAY, item, n_tokens) + header[start:end]
        header = header[: field.type_at] + body + header[field.end :]
    size = len(header) + (-len(header) % lay.alignment) + lay.data_len
    return _layout(header, size)


# -- encoding values -------------------------------------------------------------------


def gguf_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def typed(vtype: GGUFValueType, payload: bytes) -> bytes:
    """A value with its type, as it follows a key."""
    return struct.pack("<I", vtype) + payload


def nested_array(depth: int) -> bytes:
    """A typed value: an array of an array of ... ``depth`` deep, ending in one u32."""
    inner = typed(GGUFValueType.ARRAY, struct.pack("<IQ", GGUFValueType.UINT32, 1) + b"\0" * 4)
    body = inner[4:]
    for _ in range(depth - 1):
        body = struct.pack("<IQ", GGUFValueType.ARRAY, 1) + body
    return typed(GGUFValueType.ARRAY, body)


# -- mutations: each returns a new header ----------------------------------------------


def patch(header: bytes, at: int, raw: bytes) -> bytes:
    return header[:at] + raw + header[at + len(raw) :]


def set_value(lay: Layout, key: str, value: bytes) -> bytes:
    """Replace ``key``'s typed value (see :func:`typed`) with ``value``."""
    field = lay.fields[key]
    return lay.header[: field.type_at] + value + lay.header[field.end :]


def set_tensor_type(lay: Layout, name: str, raw_type: int) -> bytes:
    tensor = next(t for t in lay.tensors if t.name == name)
    return patch(lay.header, tensor.type_at, struct.pack("<I", raw_type))


def add_field(lay: Layout, key: str, value: bytes) -> bytes:
    n_kv = struct.unpack_from("<Q", lay.header, lay.n_kv_at)[0]
    header = patch(lay.header, lay.n_kv_at, struct.pack("<Q", n_kv + 1))
    return header[: lay.kv_end] + gguf_string(key) + value + header[lay.kv_end :]


# -- writing ---------------------------------------------------------------------------


def _head(lay: Layout, header: bytes) -> bytes:
    return header + b"\0" * (-len(header) % lay.alignment)


def write(src: Path, lay: Layout, header: bytes, dst: Path) -> Path:
    """A complete file: the new header, then the source's tensor data."""
    with src.open("rb") as inp, dst.open("wb") as out:
        out.write(_head(lay, header))
        inp.seek(lay.data_start)
        shutil.copyfileobj(inp, out, 16 << 20)
    return dst


def write_sparse(lay: Layout, header: bytes, dst: Path) -> Path:
    """The new header and a hole where the data goes: for header-only checks."""
    head = _head(lay, header)
    with dst.open("wb") as out:
        out.write(head)
    os.truncate(dst, len(head) + lay.data_len)
    return dst
