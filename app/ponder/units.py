"""Byte units, and how Ponder prints an amount of memory or a file size.

Memory (RAM, VRAM, buffers) is counted in binary units and shown with :func:`gib`;
file and download sizes are shown in decimal units, as the Hub and disk tools show
them, with :func:`decimal_size`.
"""

from __future__ import annotations

MiB = 1 << 20
GiB = 1 << 30


def gib(n: int | float) -> str:
    """Bytes as ``"4.4 GiB"`` (``"512 MiB"`` below one GiB)."""
    if abs(n) < GiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n / GiB:.1f} GiB"


def decimal_size(n: int | float, digits: int = 2) -> str:
    """Bytes as ``"1.12 GB"``, ``"253.11 MB"``, ``"12.00 kB"`` or ``"512 B"``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.{digits}f} {unit}"
    return f"{int(n)} B"
