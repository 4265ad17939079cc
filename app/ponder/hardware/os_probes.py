"""What the operating system says: the sources a probe reads, and the GPUs it sees.

:class:`Probes` bundles every source as an injectable callable, with the real ones as
defaults (a command with a 3 s timeout, a file, a directory listing, ``sysctl``,
``psutil``); a missing tool, a non-zero exit, a timeout or output that does not parse
just leaves that source out, with a note. Through them this module reads Apple's
sysctls and the GPUs the OS reports (``nvidia-smi``, sysfs / ``rocm-smi``, ``sysctl``,
``vulkaninfo``). NVML is not used: ``nvidia-smi`` ships with every driver that ships
NVML, and its CSV is what a test can record.
"""

from __future__ import annotations

import functools
import json
import os
import platform as _platform
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil

from ponder.hardware.bandwidth import remembered_bandwidth
from ponder.hardware.profile import DeviceLike, OsGpu
from ponder.units import GiB, MiB

COMMAND_TIMEOUT_S = 3.0
MIN_USEFUL_GPU = 2 * GiB  # less (an APU's carve-out) is not worth a rebuild


def _run_command(argv: Sequence[str]) -> str | None:
    """stdout of a command, or None when it is missing, fails or takes over 3 s."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _read_file(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _list_dir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _sysctl(name: str) -> str | None:
    """One value per call: ``sysctl -n a b`` fails as a whole when one name is unknown."""
    out = _run_command(["sysctl", "-n", name])
    return (out or "").strip() or None


def _memory() -> tuple[int, int]:
    vm = psutil.virtual_memory()
    return int(vm.total), int(vm.available)


def _cpu_counts() -> tuple[int | None, int | None]:
    return psutil.cpu_count(logical=False), psutil.cpu_count(logical=True)


def _platform_names() -> tuple[str, str]:
    return _platform.system(), _platform.machine()


@dataclass(frozen=True)
class Probes:
    """Where a profile's facts come from. Tests replace any of these with recordings.

    ``ggml_devices`` and ``system_info`` come from :mod:`ponder.devices`; left as None
    they are not probed (this module may not import llama.cpp). ``bandwidth`` takes the
    machine's fingerprint and a thread count and gives RAM read bytes/s: by default what
    was measured on this machine before, else measured now (under a second) and
    remembered; None leaves it unmeasured.
    """

    run_command: Callable[[Sequence[str]], str | None] = _run_command
    read_file: Callable[[str], str | None] = _read_file
    list_dir: Callable[[str], list[str]] = _list_dir
    sysctl: Callable[[str], str | None] = _sysctl
    memory: Callable[[], tuple[int, int]] = _memory
    cpu_counts: Callable[[], tuple[int | None, int | None]] = _cpu_counts
    platform: Callable[[], tuple[str, str]] = _platform_names
    processor: Callable[[], str] = _platform.processor
    ggml_devices: Callable[[], Sequence[DeviceLike]] | None = None
    system_info: Callable[[], str] | None = None
    bandwidth: Callable[[str, int], float | None] | None = remembered_bandwidth


T = TypeVar("T")


def _guarded(what: str, call: Callable[[], T], notes: list[str]) -> T | None:
    """Run one probe; an exception only leaves its source out, with a note."""
    try:
        return call()
    except Exception as exc:
        notes.append(f"{what}: {type(exc).__name__}: {exc}")
        return None


@dataclass(frozen=True, slots=True)
class _AppleFacts:
    silicon: bool = False
    rosetta: bool = False
    brand: str | None = None
    memsize: int | None = None
    wired_limit: int | None = None
    perf_cores: int | None = None


# --------------------------------------------------------------------------- Apple facts


_APPLE_SYSCTLS = (
    "hw.optional.arm64",  # 1 on Apple Silicon, also when this process is translated
    "sysctl.proc_translated",  # 1 under Rosetta 2
    "machdep.cpu.brand_string",
    "hw.memsize",
    "iogpu.wired_limit_mb",  # 0 unless the user raised the GPU's wired-memory limit
    "hw.perflevel0.physicalcpu",  # performance cores
)


def _probe_apple(p: Probes, notes: list[str]) -> _AppleFacts:
    values = {
        name: _guarded(f"sysctl {name}", functools.partial(p.sysctl, name), notes)
        for name in _APPLE_SYSCTLS
    }
    rosetta = values["sysctl.proc_translated"] == "1"
    wired_mb = _to_int(values["iogpu.wired_limit_mb"])
    return _AppleFacts(
        silicon=values["hw.optional.arm64"] == "1" or rosetta,
        rosetta=rosetta,
        brand=values["machdep.cpu.brand_string"],
        memsize=_to_int(values["hw.memsize"]),
        wired_limit=wired_mb * MiB if wired_mb else None,
        perf_cores=_to_int(values["hw.perflevel0.physicalcpu"]),
    )


def _to_int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


# ------------------------------------------------------------------------------ OS GPUs

_PCI_VENDORS = {"0x10de": "nvidia", "0x1002": "amd", "0x8086": "intel", "0x106b": "apple"}
_VENDOR_NAMES = {"nvidia": "NVIDIA", "amd": "AMD", "intel": "Intel", "apple": "Apple", "other": ""}
NVIDIA_SMI = (
    "nvidia-smi",
    "--query-gpu=name,memory.total,memory.free,driver_version",
    "--format=csv,noheader,nounits",
)
ROCM_SMI = ("rocm-smi", "--showmeminfo", "vram", "--json")
VULKANINFO = ("vulkaninfo", "--summary")


def _probe_os_gpus(
    p: Probes, system: str, apple: _AppleFacts, notes: list[str]
) -> tuple[OsGpu, ...]:
    gpus: list[OsGpu] = []
    if system != "Darwin":
        gpus += _nvidia_smi(p, notes)
    if system == "Linux":
        gpus += _sysfs_gpus(p, notes, have_nvidia=bool(gpus))
    if apple.silicon:
        gpus.append(_apple_gpu(apple))
    if system != "Darwin" and not any(not g.integrated for g in gpus):
        gpus = _merge_vulkan(gpus, _vulkan(p, notes))
    return tuple(gpus)


def _nvidia_smi(p: Probes, notes: list[str]) -> list[OsGpu]:
    out = _guarded("nvidia-smi", lambda: p.run_command(NVIDIA_SMI), notes)
    if out is None:
        notes.append("nvidia-smi: not available")
        return []
    gpus = [gpu for line in out.splitlines() if (gpu := _nvidia_line(line))]
    if not gpus:
        notes.append("nvidia-smi: output not understood")
    return gpus


def _nvidia_line(line: str) -> OsGpu | None:
    parts = [part.strip() for part in line.rsplit(",", 3)]
    if len(parts) != 4 or not parts[0]:
        return None
    total, free = _to_int(parts[1]), _to_int(parts[2])
    if total is None:
        return None
    driver = parts[3] if re.fullmatch(r"[\d.]+", parts[3]) else None
    free_bytes = free * MiB if free is not None else None
    return OsGpu("nvidia", parts[0], total * MiB, free_bytes, "nvidia-smi", driver)


def _sysfs_gpus(p: Probes, notes: list[str], *, have_nvidia: bool) -> list[OsGpu]:
    """Display devices under /sys/class/drm; AMD's driver reports VRAM there."""
    cards = [name for name in p.list_dir("/sys/class/drm") if re.fullmatch(r"card\d+", name)]
    if not cards:
        notes.append("sysfs: no /sys/class/drm cards")
        return _rocm_smi(p, notes)
    gpus = [gpu for card in cards if (gpu := _sysfs_card(p, f"/sys/class/drm/{card}/device"))]
    return [g for g in gpus if not (have_nvidia and g.vendor == "nvidia")]


def _sysfs_card(p: Probes, base: str) -> OsGpu | None:
    vendor = _PCI_VENDORS.get((p.read_file(f"{base}/vendor") or "").strip().lower())
    if vendor is None:
        return None
    total = _to_int(p.read_file(f"{base}/mem_info_vram_total"))
    used = _to_int(p.read_file(f"{base}/mem_info_vram_used"))
    device_id = (p.read_file(f"{base}/device") or "").strip()
    name = (p.read_file(f"{base}/product_name") or "").strip()
    name = name or f"{_VENDOR_NAMES[vendor]} GPU {device_id}".strip()
    free = total - used if total is not None and used is not None else None
    integrated = vendor == "intel" or (vendor == "amd" and (total or 0) < MIN_USEFUL_GPU)
    return OsGpu(vendor, name.strip(), total, free, "sysfs", integrated=integrated)


def _rocm_smi(p: Probes, notes: list[str]) -> list[OsGpu]:
    out = _guarded("rocm-smi", lambda: p.run_command(ROCM_SMI), notes)
    if out is None:
        notes.append("rocm-smi: not available")
        return []
    try:
        cards = json.loads(out)
    except ValueError:
        notes.append("rocm-smi: output not understood")
        return []
    return [gpu for key, card in _items(cards) if (gpu := _rocm_card(key, card))]


def _items(value: object) -> list[tuple[str, object]]:
    return [(str(k), v) for k, v in value.items()] if isinstance(value, dict) else []


def _rocm_card(key: str, card: object) -> OsGpu | None:
    fields = dict(_items(card))
    total = _to_int(str(fields.get("VRAM Total Memory (B)", "")))
    used = _to_int(str(fields.get("VRAM Total Used Memory (B)", "")))
    if total is None:
        return None
    free = total - used if used is not None else None
    return OsGpu("amd", f"AMD GPU ({key})", total, free, "rocm-smi")


def _apple_gpu(apple: _AppleFacts) -> OsGpu:
    brand = apple.brand if (apple.brand or "").startswith("Apple") else "Apple Silicon"
    return OsGpu("apple", f"{brand} GPU", apple.memsize, None, "sysctl", integrated=True)


_VULKAN_VENDORS = {**_PCI_VENDORS, "0x13b5": "other", "0x5143": "other"}


def _vulkan(p: Probes, notes: list[str]) -> list[OsGpu]:
    out = _guarded("vulkaninfo", lambda: p.run_command(VULKANINFO), notes)
    if out is None:
        notes.append("vulkaninfo: not available")
        return []
    gpus: list[OsGpu] = []
    for block in re.split(r"^GPU\d+:\s*$", out, flags=re.MULTILINE)[1:]:
        fields = dict(re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", block, flags=re.MULTILINE))
        kind = fields.get("deviceType", "")
        if "deviceName" not in fields or kind.endswith("_CPU"):  # llvmpipe and friends
            continue
        vendor = _VULKAN_VENDORS.get(fields.get("vendorID", "").lower(), "other")
        integrated = kind.endswith("INTEGRATED_GPU")
        gpus.append(OsGpu(vendor, fields["deviceName"], None, None, "vulkaninfo", None, integrated))
    return gpus


def _merge_vulkan(gpus: list[OsGpu], vulkan: list[OsGpu]) -> list[OsGpu]:
    """Vulkan names a card better than sysfs; keep sysfs entries it does not cover."""
    covered = {g.vendor for g in vulkan}
    kept = [g for g in gpus if not (g.source == "sysfs" and g.vendor in covered)]
    return kept + vulkan
