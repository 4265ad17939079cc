"""The TUI's hold on full garbage collections while a reply streams (ponder.tui.collector)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ponder.tui import collector


@pytest.fixture()
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    collector.release()
    gc.set_threshold(*before)


def test_a_hold_stops_full_collections_only_and_one_release_undoes_any_holds(
    thresholds: tuple[int, int, int],
) -> None:
    young, middle, _ = thresholds
    collector.hold()
    collector.hold()  # a second hold (a screen told twice) changes nothing
    assert gc.get_threshold() == (young, middle, collector.NEVER)
    assert gc.isenabled()  # the young collections go on
    collector.release()
    assert gc.get_threshold() == thresholds
    collector.release()  # nothing held: nothing to undo
    assert gc.get_threshold() == thresholds


def test_settle_freezes_what_lives_once_and_later_objects_are_still_collected() -> None:
    collector.settle()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    collector.settle()  # once only: a second model load freezes nothing more
    assert gc.get_freeze_count() == frozen

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle made after the freeze
    del a, b
    assert gc.collect() >= 2
