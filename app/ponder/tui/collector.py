"""Keep the app's long-lived objects out of Python's full garbage collections.

CPython's cyclic collector stops the program while it walks the objects it tracks. A
full (generation-2) collection of the chat app walks about 110,000 objects, nearly all
of them the app's own and alive until it quits (modules, classes, Textual's styles,
llama-cpp-python): on the 2-core machine bench/bench_tui.py runs on, 100-150 ms with
the event loop stopped, several times in a long reply. Once the rendering was
bounded, those pauses were the largest the benchmark measured while a reply streamed.

:func:`settle`, once the first model has loaded (the screen has just changed; no one
types yet), collects and then moves everything alive out of the collector's sight for
good (``gc.freeze``). A full collection then walks only what was made since: 20-70 ms
in the benchmark's 9,000-token reply, whose rendering leaves a lot of cyclic garbage
(Textual's strips and their caches). Holding full collections off while a reply
streams was tried and is worse: the garbage piles up and the one collection at the
end took 170 ms.

What the freeze costs: an object alive at that moment that later becomes unreachable
only through a cycle is never reclaimed. That is bounded by what existed then, once,
and does not grow with use (a model's memory is freed by closing it, not by the
collector). Written here because it is two calls of the standard library at a moment
only the app knows.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """The app is up: keep what lives now out of every later collection (once)."""
    if gc.get_freeze_count() == 0:
        gc.collect()  # what is garbage now is not kept with the rest
        gc.freeze()
