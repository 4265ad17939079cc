"""A corpus of hostile GGUF headers, made from the real Gemma 3 270M file.

``NAMED`` are the mutations that once took ``ponder run`` down (issue 13): a NaN or
negative epsilon, a BERT tokenizer in a gemma3 file, a norm tensor of a type that does
not suit it, a context length past what llama.cpp can address, a 3,000-deep array.
:func:`generated` adds a few hundred more, deterministically: boundary values for every
scalar key, values of the wrong type, every tensor type on the last tensor (the one whose
size may change without moving another), and seeded byte flips in the metadata.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator

from gguf import GGMLQuantizationType, GGUFValueType

from support.gguf_mutants import (
    Layout,
    add_field,
    gguf_string,
    nested_array,
    patch,
    set_tensor_type,
    set_value,
    typed,
)

T = GGUFValueType
EPSILON = "gemma3.attention.layer_norm_rms_epsilon"
LAST_NORM = "blk.17.post_ffw_norm.weight"


def f32(x: float) -> bytes:
    return typed(T.FLOAT32, struct.pack("<f", x))


def u32(x: int) -> bytes:
    return typed(T.UINT32, struct.pack("<I", x))


def string(text: str | bytes) -> bytes:
    return typed(T.STRING, gguf_string(text))


Mutation = Callable[[Layout], bytes]

NAMED: dict[str, Mutation] = {
    "epsilon-nan": lambda lay: set_value(lay, EPSILON, f32(float("nan"))),
    "epsilon-negative": lambda lay: set_value(lay, EPSILON, f32(-1.0)),
    "bert-tokenizer-in-gemma3": lambda lay: set_value(lay, "tokenizer.ggml.model", string("bert")),
    "norm-tensor-q8_0": lambda lay: set_tensor_type(lay, LAST_NORM, 8),
    "norm-tensor-type-39": lambda lay: set_tensor_type(lay, LAST_NORM, 39),
    "norm-tensor-type-40": lambda lay: set_tensor_type(lay, LAST_NORM, 40),
    "context-length-2^32-1": lambda lay: set_value(lay, "gemma3.context_length", u32(2**32 - 1)),
    "array-nested-3000-deep": lambda lay: add_field(lay, "x.nested", nested_array(3000)),
}

_U32_VALUES = (0, 1, 2**31 - 1, 2**31, 2**32 - 1)
_F32_VALUES = (0.0, -0.0, -1.0, float("nan"), float("inf"), float("-inf"), 1e30, 1e-45)
_BOOL_VALUES = (0, 1, 2, 255)
_STRINGS: tuple[str | bytes, ...] = (
    "",
    "bert",
    "t5",
    "gpt2",
    "rwkv",
    "none",
    "llama",
    "x" * 300,
    b"\xff\xfe",
)


def _scalar_values(vtype: GGUFValueType) -> Iterator[tuple[str, bytes]]:
    if vtype is T.UINT32:
        for x in _U32_VALUES:
            yield f"{x}", u32(x)
    elif vtype is T.FLOAT32:
        for y in _F32_VALUES:
            yield f"{y}", f32(y)
    elif vtype is T.BOOL:
        for b in _BOOL_VALUES:
            yield f"{b}", typed(T.BOOL, bytes([b]))
    elif vtype is T.STRING:
        for s in _STRINGS:
            yield repr(s)[:20], string(s)


_WRONG_TYPES: tuple[tuple[str, bytes], ...] = (
    ("as-string", string("1")),
    ("as-f32", f32(1.0)),
    ("as-u64", typed(T.UINT64, struct.pack("<Q", 2**40))),
    ("as-i32-negative", typed(T.INT32, struct.pack("<i", -5))),
    ("as-array", typed(T.ARRAY, struct.pack("<IQ", T.UINT32, 2) + b"\1\0\0\0\2\0\0\0")),
)


def generated(lay: Layout, *, flips: int = 60, seed: int = 13) -> Iterator[tuple[str, bytes]]:
    """(name, header) pairs; deterministic for a given layout and seed."""
    for key, field in lay.fields.items():
        if field.vtype is T.ARRAY:
            continue
        for label, value in _scalar_values(field.vtype):
            yield f"{key}={label}", set_value(lay, key, value)
        for label, value in _WRONG_TYPES:
            yield f"{key}:{label}", set_value(lay, key, value)
    for qtype in GGMLQuantizationType:
        yield f"{LAST_NORM}:{qtype.name}", set_tensor_type(lay, LAST_NORM, qtype.value)
    for raw in (31, 36, 99, 2**31):
        yield f"{LAST_NORM}:type-{raw}", set_tensor_type(lay, LAST_NORM, raw)
    for depth in (2, 8, 9, 3000):
        yield f"nested-{depth}", add_field(lay, "x.nested", nested_array(depth))
    rng = random.Random(seed)
    tokens = lay.fields["tokenizer.ggml.tokens"]
    for i in range(flips):
        header = lay.header
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(24, tokens.type_at)
            header = patch(header, at, bytes([rng.randrange(256)]))
        yield f"flip-{i}", header
