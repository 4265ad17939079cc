"""What bench_memory.py compares: llama.cpp's buffer sizes as it logs them, and the
planner's estimate, both split into the planner's components (weights, repack, KV,
compute); a :class:`Case` is one model x context x mmap setting, :class:`Measured` its
result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1 << 20
TARGET = 0.10  # ±10 %


# "<prefix>:   <DEV> <kind> buffer size = <X> MiB", as llama.cpp 0.3.36 logs them, e.g.
#   load_tensors:   CPU_Mapped model buffer size =  1052.50 MiB
#   llama_kv_cache:        CPU KV buffer size =   112.00 MiB
#   llama_context:        CPU  output buffer size =     0.58 MiB
#   sched_reserve:        CPU compute buffer size =   302.75 MiB
BUFFER_LINE = re.compile(
    r"(?P<dev>[A-Za-z][\w-]*)\s+(?P<kind>model|KV|RS|output|compute) buffer size\s*=\s*"
    r"(?P<mib>[\d.]+) MiB"
)
# Shown for the reader, not summed (they repeat the KV buffer lines in more detail).
INFO_LINE = re.compile(r"llama_kv_cache: size =|cannot be used with preferred buffer type")


@dataclass(frozen=True, slots=True)
class Components:
    """Memory in MiB by the planner's components."""

    weights: float
    repack: float
    kv: float
    compute: float

    @property
    def total(self) -> float:
        return self.weights + self.repack + self.kv + self.compute

    def items(self) -> list[tuple[str, float]]:
        return [
            ("weights", self.weights),
            ("repack", self.repack),
            ("KV", self.kv),
            ("compute", self.compute),
        ]


@dataclass(slots=True)
class Buffers:
    """llama.cpp's buffer sizes (MiB) parsed from its log, and the lines they came from."""

    model: dict[str, float] = field(default_factory=dict)  # by buffer type
    kv: list[float] = field(default_factory=list)
    other: dict[tuple[str, str], float] = field(default_factory=dict)  # (kind, dev) -> last
    lines: list[str] = field(default_factory=list)

    def components(self, *, use_mmap: bool) -> Components:
        repack = sum(v for k, v in self.model.items() if k.endswith("_REPACK"))
        plain = sum(v for k, v in self.model.items() if not k.endswith("_REPACK"))
        compute = sum(v for (kind, _), v in self.other.items() if kind in ("compute", "output"))
        rs = sum(v for (kind, _), v in self.other.items() if kind == "RS")
        if use_mmap:  # the mapped file holds every tensor; the repacked ones are a second copy
            return Components(plain, repack, sum(self.kv) + rs, compute)
        return Components(plain + repack, 0.0, sum(self.kv) + rs, compute)

    @property
    def found(self) -> set[str]:
        kinds = {kind for kind, _ in self.other}
        return kinds | ({"model"} if self.model else set()) | ({"KV"} if self.kv else set())


def parse_buffers(lines: Iterable[str]) -> Buffers:
    """Sum llama.cpp's buffer-size lines: model and KV buffers are each logged once when
    made; compute and output buffers can be re-reserved, so the last size per device wins."""
    out = Buffers()
    for raw in lines:
        line = raw.rstrip("\n")
        match = BUFFER_LINE.search(line)
        if match:
            kind, dev, mib = match["kind"], match["dev"], float(match["mib"])
            if kind == "model":
                out.model[dev] = out.model.get(dev, 0.0) + mib
            elif kind == "KV":
                out.kv.append(mib)
            else:
                out.other[(kind, dev)] = mib
            out.lines.append(line.strip())
        elif INFO_LINE.search(line):
            out.lines.append(line.strip())
    return out


@dataclass(frozen=True, slots=True)
class Case:
    model: str  # "gemma" | "r1shaped"
    path: Path
    n_ctx: int
    use_mmap: bool
    planner_mmap: bool
    n_batch: int
    n_threads: int
    estimate: Components
    margin_mib: float
    ram_need_mib: float  # the planner's figure, margin included


@dataclass(frozen=True, slots=True)
class Measured:
    case: Case
    buffers: Buffers
    actual: Components
    child: dict[str, Any]

    @property
    def rss_mib(self) -> float:
        return float(self.child["rss_end"] - self.child["rss_start"]) / MiB

    @property
    def peak_mib(self) -> float | None:
        peak = self.child.get("maxrss")
        return None if peak is None else float(peak - self.child["rss_start"]) / MiB

    @property
    def ratio_buffers(self) -> float:
        return self.case.estimate.total / self.actual.total if self.actual.total else 0.0

    @property
    def ratio_rss(self) -> float:
        return self.case.estimate.total / self.rss_mib if self.rss_mib > 0 else 0.0

    @property
    def passed(self) -> bool:
        return abs(self.ratio_buffers - 1.0) <= TARGET
