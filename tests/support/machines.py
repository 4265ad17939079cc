"""Recorded machines: what the hardware probes returned on each kind of machine.

Each file in ``hardware_profiles/`` holds the answers of every probe (nvidia-smi, sysfs,
sysctl, llama.cpp's device list, ...) on one machine, so the planner and the screens can
be tested for a CUDA desktop, an Apple laptop or a ROCm card on a machine with none.

``memory_bandwidth`` stands for what ``ponder.hardware.bandwidth`` measures there (RAM
read bytes/s with the performance cores' threads). These were not measured on those
machines: they are typical figures for their memory (dual-channel DDR4-2400 for the
T480-class laptop, DDR5 for the recent desktops, the M2's unified LPDDR5 as its CPU
cores see it), so that predicted speeds are plausible and stable. GPU bandwidths come
from the data-sheet table in ``ponder.hardware.bandwidth``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

from ponder import hardware
from ponder.catalog import Catalog, load_catalog
from ponder.hardware import HardwareProfile, ModelFacts

PROFILES = Path(__file__).parent / "hardware_profiles"


@dataclasses.dataclass(frozen=True)
class RecordedDevice:
    name: str
    description: str
    kind: str
    free_bytes: int
    total_bytes: int


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PROFILES / f"{name}.json").read_text())
    return data


def probes_from(data: dict[str, Any]) -> hardware.Probes:
    """Probes that answer from a recording; anything not recorded is missing."""
    commands, files, dirs, sysctl = data["commands"], data["files"], data["dirs"], data["sysctl"]
    return hardware.Probes(
        run_command=lambda argv: commands.get(" ".join(argv)),
        read_file=lambda path: files.get(path),
        list_dir=lambda path: list(dirs.get(path, [])),
        sysctl=lambda key: sysctl.get(key),
        memory=lambda: (data["memory"][0], data["memory"][1]),
        cpu_counts=lambda: (data["cpu_counts"][0], data["cpu_counts"][1]),
        platform=lambda: (data["platform"][0], data["platform"][1]),
        processor=lambda: str(data["processor"]),
        ggml_devices=lambda: [RecordedDevice(**d) for d in data["ggml_devices"]],
        system_info=lambda: str(data["system_info"]),
        bandwidth=lambda fingerprint, threads: data.get("memory_bandwidth"),
    )


@functools.cache
def machine(name: str) -> HardwareProfile:
    return hardware.probe(probes_from(recorded(name)))


# The catalog and one model's facts, shared by the planner and speed tests.
@functools.cache
def catalog() -> Catalog:
    return load_catalog()


def facts(ref: str) -> ModelFacts:
    resolved = catalog().resolve(ref)
    result = ModelFacts.from_catalog(resolved.model, resolved.quant)
    assert result is not None
    return result
