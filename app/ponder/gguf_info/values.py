"""The lowest layer of the GGUF reader: bounds-checked little-endian reads over an ``mmap``.

The scalar formats of GGUF's value types, a cursor that raises :class:`_Truncated`
instead of reading past the end, metadata values (small numeric arrays read, large or
string arrays kept as a position and skipped by length), and decoding only the wanted
items of a string array. :class:`_Corrupt` marks what no valid file holds; the header
reader turns both into a :class:`~ponder.errors.GGUFError`.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

from gguf import GGUFValueType

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
# Arrays of arrays: llama.cpp reads none, and each level cost a Python frame here, so a
# 3,000-deep one ended in RecursionError (issue 13). Deeper than this is a damaged file.
MAX_NESTING = 8


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
        _skip_items(cur, item_type, count, key, depth=1)
        return array
    return cur.scalar(_SCALARS[vtype])


def _skip_items(
    cur: _Cursor, item_type: GGUFValueType, count: int, key: str, *, depth: int
) -> None:
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
        if depth >= MAX_NESTING:
            raise _Corrupt(f"key {key!r} holds arrays nested more than {MAX_NESTING} deep")
        for _ in range(count):
            _skip_items(cur, _value_type(cur.u32(), key), cur.u64(), key, depth=depth + 1)


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
