"""Short human forms of sizes, durations and speeds for the UI."""

from __future__ import annotations

from ponder.units import decimal_size


def size(n: int | float) -> str:
    """A file or download size, one decimal (table cells are narrow)."""
    return decimal_size(n, 1)


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def thinking_title(seconds: float, tokens: int, *, done: bool, budget: int | None = None) -> str:
    """The reasoning panel's title: live while thinking, a summary once it ended, and
    the thinking budget when the chat has one ("budget 512")."""
    count = f"{tokens:,} token{'s' if tokens != 1 else ''}"
    limit = "" if budget is None else f" · budget {budget:,}"
    if done:
        return f"Thought for {duration(seconds)} · {count}{limit}"
    return f"Thinking… {duration(seconds)} · {count}{limit}"
