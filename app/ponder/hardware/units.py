"""Byte units, and how Ponder prints an amount of memory.

The bottom of :mod:`ponder.hardware`: every other part counts memory in bytes, in these
units, and shows it with :func:`gib`.
"""

from __future__ import annotations

MiB = 1 << 20
GiB = 1 << 30


def gib(n: int | float) -> str:
    """Bytes as ``"4.4 GiB"`` (``"512 MiB"`` below one GiB)."""
    if abs(n) < GiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n / GiB:.1f} GiB"
