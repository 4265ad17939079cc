"""Choose load settings for this machine: context size and threads.

This is the first, simple rule: CPU memory only. Budget RAM for the weights (about
1.6x the file on CPU, because llama.cpp repacks eligible Q4 weights into a second
buffer, DESIGN.md "Memory estimate"), a compute buffer, and the KV cache. Start at
a context generous enough for reasoning traces and halve it until it fits, never
going below 4,096 tokens. GPU offload planning is not here yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

DEFAULT_CTX = 16_384
MIN_CTX = 4_096
CPU_WEIGHT_FACTOR = 1.6
COMPUTE_BUFFER_BYTES = 512 * 1024 * 1024
RAM_HEADROOM = 0.9  # leave a tenth of the available memory to everything else


@dataclass(frozen=True, slots=True)
class ModelShape:
    """What the rule needs to know about a model (from its GGUF header)."""

    file_size: int
    n_ctx_train: int
    kv_bytes_per_token: int


@dataclass(frozen=True, slots=True)
class ContextChoice:
    n_ctx: int
    estimated_bytes: int
    available_bytes: int
    reduced: bool  # smaller than the default because memory is short


def available_memory() -> int:
    return int(psutil.virtual_memory().available)


def default_threads() -> int:
    """Physical cores: hyper-threads do not speed up token generation."""
    physical = psutil.cpu_count(logical=False)
    return max(1, physical or os.cpu_count() or 1)


def estimate_bytes(shape: ModelShape, n_ctx: int) -> int:
    weights = int(shape.file_size * CPU_WEIGHT_FACTOR)
    return weights + COMPUTE_BUFFER_BYTES + shape.kv_bytes_per_token * n_ctx


def choose_context(
    shape: ModelShape, *, requested: int | None = None, available: int | None = None
) -> ContextChoice:
    """The context to load with: the user's if given, else the largest that fits."""
    free = available_memory() if available is None else available
    ceiling = max(1, shape.n_ctx_train)
    if requested is not None:
        n_ctx = min(requested, ceiling)
        return ContextChoice(n_ctx, estimate_bytes(shape, n_ctx), free, reduced=False)
    n_ctx = min(DEFAULT_CTX, ceiling)
    floor = min(MIN_CTX, ceiling)
    budget = int(free * RAM_HEADROOM)
    while n_ctx > floor and estimate_bytes(shape, n_ctx) > budget:
        n_ctx = max(floor, n_ctx // 2)
    return ContextChoice(
        n_ctx, estimate_bytes(shape, n_ctx), free, reduced=n_ctx < min(DEFAULT_CTX, ceiling)
    )
