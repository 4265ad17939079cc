"""Keep Python's full garbage collections out of a streaming reply.

CPython's cyclic collector stops the program while it walks the objects it tracks. A
full (generation-2) collection of the chat app walks about 110,000 objects, nearly all
of them the app's own (modules, classes, Textual's styles, llama-cpp-python): on the
2-core machine bench/bench_tui.py runs on, 100-150 ms with the event loop stopped.
Once the rendering was bounded, those pauses were the largest the benchmark measured
while a reply streamed. Two measures:

- :func:`settle`, once the first model has loaded (the screen has just changed; no
  one types yet), collects and then moves everything alive, the app's long-lived
  objects, out of the collector's sight for good (``gc.freeze``). From then on a full
  collection walks only what was made since: about 11,000 objects after a
  9,000-token reply.
- :func:`hold`, while a reply streams, leaves the young collections running (they
  reclaim nearly all of a reply's garbage, cheaply) but lets no full one start;
  :func:`release` puts the threshold back when the reply ends.

What the freeze costs: an object alive at that moment that later becomes unreachable
only through a cycle is never reclaimed. That is bounded by what existed then, once,
and does not grow with use (a model's memory is freed by closing it, not by the
collector). Written here because it is a few calls of the standard library at
moments only the app knows.
"""

from __future__ import annotations

import gc

NEVER = 1_000_000_000  # a generation-2 threshold no reply reaches
_saved: list[tuple[int, int, int]] = []  # the thresholds while a reply holds them


def settle() -> None:
    """The app is up: keep what lives now out of every later collection (once)."""
    if gc.get_freeze_count() == 0:
        gc.collect()  # what is garbage now is not kept with the rest
        gc.freeze()


def hold() -> None:
    """A reply starts: no full collection until :func:`release`."""
    if not _saved:
        young, middle, old = gc.get_threshold()
        _saved.append((young, middle, old))
        gc.set_threshold(young, middle, NEVER)


def release() -> None:
    """The reply ended (or the app did): full collections may run again."""
    if _saved:
        gc.set_threshold(*_saved.pop())
