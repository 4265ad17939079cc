"""Split models: from the first shard's header to every shard's, checked in order.

The path must be the first shard, ``NAME-00001-of-0000N.gguf`` (the naming is
:mod:`ponder.shards`'s); each sibling must exist and say it is shard N.
"""

from __future__ import annotations

from pathlib import Path

from gguf import Keys

from ponder import shards
from ponder.errors import GGUFError
from ponder.gguf_info.header import _HINT_REDOWNLOAD, _Header, _read_header
from ponder.gguf_info.meta import _Meta


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
