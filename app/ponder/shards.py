"""Split GGUF models: the one rule for shard names, ``PREFIX-00001-of-00003.gguf``.

llama.cpp's ``gguf-split`` writes a big model as shards named
``<prefix>-<number>-of-<count>.gguf`` (five digits each, numbered from 1), and
llama.cpp loads one by opening the first shard and building the others' names from
its prefix. The catalog checks its file lists against this rule, the download brings
a named shard's siblings and groups a repo's files by it, and gguf_info finds the
shards to read with it.

Case-sensitive, as llama.cpp is: it looks for exactly ``-%05d-of-%05d.gguf``, so a
file spelled ``…-00001-of-00002.GGUF`` is not a split it could load, and it is no
shard here either. (The download's own pattern used to ignore case; a Hub upload
spelled that way is now a plain file to it, which is what llama.cpp makes of it.)

The prefix is everything before the ``-<number>-of-<count>`` part: folders
included, possibly empty, so a bare file name and a repo path read alike. Numbers
are read as written; whether shard 0, or shard 4 of 3, is an error is for the
caller to say, in its own words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"(?P<prefix>.*)-(?P<number>\d{5})-of-(?P<count>\d{5})\.gguf", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard's name, read: ``prefix-<number>-of-<count>.gguf``."""

    prefix: str
    number: int
    count: int

    def name(self, number: int) -> str:
        """The name of shard ``number`` of the same split."""
        return f"{self.prefix}-{number:05d}-of-{self.count:05d}.gguf"

    def names(self) -> list[str]:
        """The names of all the split's shards, first to last."""
        return [self.name(number) for number in range(1, self.count + 1)]


def parse(name: str) -> Shard | None:
    """``name`` (a file name or a path) read as a shard, or None when it is not one."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return Shard(match["prefix"], int(match["number"]), int(match["count"]))


def names(name: str) -> list[str]:
    """Every file of the split that ``name`` belongs to, in order; ``[name]`` if none."""
    shard = parse(name)
    return [name] if shard is None else shard.names()
