"""The one rule for split-GGUF shard names, as llama.cpp reads them."""

from __future__ import annotations

import pytest

from ponder import shards
from ponder.shards import Shard


def test_a_shard_name_is_read_with_its_folders() -> None:
    assert shards.parse("Q8_0/Tiny-Q8_0-00002-of-00003.gguf") == Shard("Q8_0/Tiny-Q8_0", 2, 3)
    assert shards.parse("tiny-00001-of-00001.gguf") == Shard("tiny", 1, 1)


@pytest.mark.parametrize(
    "name",
    [
        "tiny.gguf",
        "tiny-00001-of-00003.gguf.part",
        "tiny-0001-of-0003.gguf",  # llama.cpp writes five digits
        "tiny-00001-of-00003.GGUF",  # llama.cpp's rule is case-sensitive
        "tiny-00001-OF-00003.gguf",
        "tiny-00001-of-00003.bin",
    ],
)
def test_other_names_are_not_shards(name: str) -> None:
    assert shards.parse(name) is None


def test_any_shard_gives_every_sibling_in_order() -> None:
    expected = [f"m/M-Q8_0-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    assert shards.names("m/M-Q8_0-00002-of-00003.gguf") == expected
    assert shards.parse(expected[2]).names() == expected  # type: ignore[union-attr]
    assert shards.names("m/M-Q4_K_M.gguf") == ["m/M-Q4_K_M.gguf"]


def test_numbers_are_read_as_written() -> None:
    """Shard 4 of 3 is for the caller to refuse, in its own words."""
    assert shards.parse("x-00004-of-00003.gguf") == Shard("x", 4, 3)
    assert Shard("x", 4, 3).name(1) == "x-00001-of-00003.gguf"
