"""The TUI keeps its long-lived objects out of full garbage collections (ponder.tui.collector)."""

from __future__ import annotations

import gc

from ponder.tui import collector


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
