"""Ponder: run distilled reasoning models (DeepSeek-R1 distills and peers) locally.

Nothing happens at import time; front ends build what they need through factories.
"""

__version__ = "0.1.0"
