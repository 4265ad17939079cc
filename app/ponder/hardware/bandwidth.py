"""How fast this machine's memories read: RAM measured here, GPUs from their spec sheets.

A token of decoding reads every weight of the model once, so decode speed is set by
memory bandwidth (docs/architecture.md#speed-estimate). The speed estimate needs two
figures, and this module supplies both:

* **RAM**: :func:`measure_ram_bandwidth` times it, with as many threads as llama.cpp
  decodes with. Each thread scans a buffer of its own with libc's ``memchr`` for a byte
  that is not there: read-only, vectorised by libc, and called through ``ctypes``, which
  releases the GIL, so the threads read at once. A round is timed from the moment every
  thread starts until the last one ends, and the best of the rounds that fit in
  :data:`MEASURE_BUDGET_S` counts (another process can only make a round slower). It is
  measured again after a day, and the latest figure is the one kept, not the best ever:
  a machine's bandwidth moves (this project's VM read 13.4 GB/s one day and 10.0 GB/s
  another, quiet both times, and the decode prediction was 1.44 x too high until it
  followed). Hand
  written because nothing Ponder depends on measures memory bandwidth (numpy is not a
  dependency, and STREAM is a C program nobody has installed). The figure is
  remembered per machine and thread count (:class:`BandwidthMemory`), so it is measured
  once, in under a second; :func:`remembered_bandwidth` is the probe's default.
* **GPUs** cannot be timed from here without loading llama.cpp, so
  :func:`gpu_spec` looks the device's name up in :data:`GPU_SPECS`, the data-sheet
  memory bandwidth and FP16 throughput of the common cards and Apple chips (every GPU of
  the recorded machines in ``tests/support/hardware_profiles`` is there). An unknown
  card gets :data:`UNKNOWN_GPU`, and says so.
"""

from __future__ import annotations

import ctypes
import json
import re
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ponder.paths import default_paths, write_text_atomic
from ponder.units import MiB

MEASURE_BUDGET_S = 0.6  # filling the buffers and the timed rounds together, well under 1 s
TOTAL_BYTES = 512 * MiB  # all threads' buffers: past the largest last-level caches (105 MiB
# here, 96 MiB on a 7800X3D); a 64 MiB buffer read by one thread came from L3 at 26.6 GB/s
MIN_BUFFER_BYTES = 32 * MiB
MAX_THREADS = 16  # more threads than this do not read faster; their buffers would only cost
BANDWIDTH_FILE = "bandwidth.json"


# ============================================================================= RAM


def _libc_memchr() -> Any | None:
    """libc's ``memchr`` through ctypes (which drops the GIL around the call), or None."""
    try:
        libc = ctypes.cdll.msvcrt if sys.platform == "win32" else ctypes.CDLL(None)
        memchr = libc.memchr
    except (OSError, AttributeError):
        return None
    memchr.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    memchr.restype = ctypes.c_void_p
    return memchr


def measure_ram_bandwidth(
    threads: int, *, budget_s: float = MEASURE_BUDGET_S, total_bytes: int = TOTAL_BYTES
) -> float | None:
    """RAM read bandwidth in bytes/s with ``threads`` threads reading at once; None when
    libc's ``memchr`` cannot be reached. Takes about ``budget_s`` seconds (longer only
    when the machine is so busy that filling the buffers takes longer: a buffer cut
    short would fit in the cache and read ten times too fast, 221.8 GB/s here), and for
    that moment ``total_bytes`` of memory (at most an eighth of what is free)."""
    memchr = _libc_memchr()
    if memchr is None:
        return None
    started = time.perf_counter()
    deadline = started + budget_s
    n = max(1, min(threads, MAX_THREADS))
    total = min(total_bytes, psutil.virtual_memory().available // 8)
    size = max(total // n, min(MIN_BUFFER_BYTES, total_bytes))
    buffers = [(ctypes.c_char * size)() for _ in range(n)]
    for buf in buffers:  # touch every page: fresh pages all map one zero page
        ctypes.memset(buf, 1, size)
    barrier = threading.Barrier(n + 1)
    rounds: list[float] = []
    state = {"go": True}

    def scan(buf: Any) -> None:
        while True:
            barrier.wait()  # start of a round
            if not state["go"]:
                return
            memchr(buf, 0, size)
            barrier.wait()  # end of the round

    workers = [threading.Thread(target=scan, args=(b,), daemon=True) for b in buffers]
    for worker in workers:
        worker.start()
    try:
        while not rounds or time.perf_counter() < deadline:
            barrier.wait()
            began = time.perf_counter()
            barrier.wait()
            rounds.append(n * size / max(time.perf_counter() - began, 1e-9))
    finally:
        state["go"] = False
        with suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=1.0)
        for worker in workers:
            worker.join(timeout=1.0)
    return max(rounds)


class BandwidthMemory:
    """Measured RAM bandwidth per machine fingerprint and thread count: a small JSON cache
    (a missing or unreadable file is an empty one, never a reason to fail)."""

    VERSION = 1
    MAX_ENTRIES = 64

    def __init__(self, path: Path) -> None:
        self.path = path

    def recall(self, machine: str, threads: int, *, max_age_s: float | None = None) -> float | None:
        """The figure remembered, or None (none, unreadable, or older than ``max_age_s``)."""
        entry = self._entries().get(f"{machine}|{threads}")
        try:
            value = float(entry["bytes_per_s"]) if isinstance(entry, dict) else None
        except (KeyError, TypeError, ValueError):
            return None
        if max_age_s is not None and time.time() - _measured_at(entry) > max_age_s:
            return None
        return value if value is not None and value > 0 else None

    def remember(self, machine: str, threads: int, bytes_per_s: float) -> None:
        """Keep the latest figure: what the machine reads now (see the module docstring)."""
        entries = self._entries()
        entries[f"{machine}|{threads}"] = {"bytes_per_s": bytes_per_s, "measured_at": time.time()}
        if len(entries) > self.MAX_ENTRIES:
            ordered = sorted(entries.items(), key=lambda kv: _measured_at(kv[1]), reverse=True)
            entries = dict(ordered[: self.MAX_ENTRIES])
        text = json.dumps({"version": self.VERSION, "entries": entries}, indent=1, sort_keys=True)
        with suppress(OSError):  # a read-only folder: measured again next time
            write_text_atomic(self.path, text)

    def _entries(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return dict(entries) if isinstance(entries, dict) else {}


def _measured_at(entry: Any) -> float:
    try:
        return float(entry.get("measured_at", 0.0))
    except (AttributeError, TypeError, ValueError):
        return 0.0


REMEASURE_AFTER_S = 24 * 3600


def remembered_bandwidth(machine: str, threads: int, path: Path | None = None) -> float | None:
    """The probe's default: what was measured on this machine in the last day, else
    measure it now (under a second) and remember it in ``<cache dir>/bandwidth.json``
    (a measurement taken while the machine was busy reads low, for a day)."""
    memory = BandwidthMemory(path or default_paths().cache_dir / BANDWIDTH_FILE)
    known = memory.recall(machine, threads, max_age_s=REMEASURE_AFTER_S)
    if known is not None:
        return known
    measured = measure_ram_bandwidth(threads)
    if measured is not None:
        memory.remember(machine, threads, measured)
    return memory.recall(machine, threads) or measured


# ============================================================================= GPUs


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """A GPU's data-sheet figures: memory bandwidth and dense FP16 throughput."""

    name: str
    bandwidth: float  # bytes/s
    flops: float  # FLOP/s, dense FP16 (tensor cores where the card has them)
    known: bool = True


def _spec(name: str, gb_s: float, tflops: float) -> GpuSpec:
    return GpuSpec(name, gb_s * 1e9, tflops * 1e12)


# Name as it appears in llama.cpp's device description ("NVIDIA GeForce RTX 4090",
# "AMD Radeon RX 7900 XTX", "Apple M2"); longer names are tried first, so "RTX 4060 Ti"
# and "RTX 4060 Laptop" win over "RTX 4060", and "M2 Pro" over "M2".
GPU_SPECS: tuple[GpuSpec, ...] = (
    # NVIDIA GeForce, desktop
    _spec("RTX 5090", 1792, 210), _spec("RTX 5080", 960, 113), _spec("RTX 5070 Ti", 896, 88),
    _spec("RTX 5070", 672, 62), _spec("RTX 5060 Ti", 448, 47), _spec("RTX 5060", 448, 38),
    _spec("RTX 4090", 1008, 165), _spec("RTX 4080 SUPER", 736, 104), _spec("RTX 4080", 717, 97),
    _spec("RTX 4070 Ti SUPER", 672, 88), _spec("RTX 4070 Ti", 504, 80),
    _spec("RTX 4070 SUPER", 504, 71), _spec("RTX 4070", 504, 58), _spec("RTX 4060 Ti", 288, 44),
    _spec("RTX 4060", 272, 30), _spec("RTX 3090 Ti", 1008, 80), _spec("RTX 3090", 936, 71),
    _spec("RTX 3080 Ti", 912, 68), _spec("RTX 3080", 760, 60), _spec("RTX 3070 Ti", 608, 43),
    _spec("RTX 3070", 448, 40), _spec("RTX 3060 Ti", 448, 32), _spec("RTX 3060", 360, 25),
    _spec("RTX 3050", 224, 18), _spec("RTX 2080 Ti", 616, 54), _spec("RTX 2080", 448, 40),
    _spec("RTX 2070", 448, 30), _spec("RTX 2060", 336, 26), _spec("GTX 1080 Ti", 484, 11),
    _spec("GTX 1080", 320, 9), _spec("GTX 1070", 256, 6.5), _spec("GTX 1660", 192, 10),
    # NVIDIA GeForce, laptop
    _spec("RTX 4090 Laptop", 576, 110), _spec("RTX 4080 Laptop", 432, 80),
    _spec("RTX 4070 Laptop", 256, 45), _spec("RTX 4060 Laptop", 256, 45),
    _spec("RTX 4050 Laptop", 192, 36), _spec("RTX 3080 Laptop", 448, 40),
    _spec("RTX 3070 Laptop", 448, 32), _spec("RTX 3060 Laptop", 336, 22),
    # NVIDIA data centre and workstation
    _spec("H200", 4800, 990), _spec("H100 PCIe", 2000, 756), _spec("H100", 3350, 990),
    _spec("A100 80GB", 2039, 312), _spec("A100", 1555, 312), _spec("L40S", 864, 362),
    _spec("L40", 864, 181), _spec("L4", 300, 121), _spec("A10", 600, 125), _spec("T4", 320, 65),
    _spec("V100", 900, 125), _spec("RTX 6000 Ada", 960, 364), _spec("RTX A6000", 768, 155),
    # AMD
    _spec("RX 7900 XTX", 960, 123), _spec("RX 7900 XT", 800, 103), _spec("RX 7900 GRE", 576, 92),
    _spec("RX 7800 XT", 624, 74), _spec("RX 7700 XT", 432, 70), _spec("RX 7600", 288, 43),
    _spec("RX 6900 XT", 512, 46), _spec("RX 6800 XT", 512, 41), _spec("RX 6700 XT", 384, 26),
    _spec("MI300X", 5300, 1300), _spec("MI250", 3200, 362), _spec("MI210", 1600, 181),
    # Intel
    _spec("Arc A770", 560, 39), _spec("Arc A750", 512, 34), _spec("Arc B580", 456, 55),
    # Apple (unified memory: the GPU's bandwidth is the chip's)
    _spec("M1 Ultra", 800, 21), _spec("M1 Max", 400, 10.4), _spec("M1 Pro", 200, 5.2),
    _spec("M1", 68, 2.6), _spec("M2 Ultra", 800, 27), _spec("M2 Max", 400, 13.6),
    _spec("M2 Pro", 200, 6.8), _spec("M2", 100, 3.6), _spec("M3 Ultra", 819, 28),
    _spec("M3 Max", 400, 16.4), _spec("M3 Pro", 150, 7.4), _spec("M3", 100, 4.1),
    _spec("M4 Max", 546, 18.4), _spec("M4 Pro", 273, 9.2), _spec("M4", 120, 4.3),
)  # fmt: skip

UNKNOWN_GPU = _spec("an unknown GPU", 300, 20)
_BY_LENGTH = sorted(GPU_SPECS, key=lambda s: -len(s.name))
_PATTERNS = [
    (re.compile(rf"(?<![\w-]){re.escape(s.name)}(?![\w-])", re.IGNORECASE), s) for s in _BY_LENGTH
]


def gpu_spec(description: str, name: str = "") -> GpuSpec:
    """The data-sheet figures of the GPU llama.cpp describes; :data:`UNKNOWN_GPU`'s
    (``known`` False) when it is not in the table."""
    text = f"{description} {name}"
    for pattern, spec in _PATTERNS:
        if pattern.search(text):
            return spec
    return GpuSpec(UNKNOWN_GPU.name, UNKNOWN_GPU.bandwidth, UNKNOWN_GPU.flops, known=False)
