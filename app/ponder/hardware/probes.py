"""Probing this machine into a :class:`~ponder.hardware.profile.HardwareProfile`.

:func:`probe` puts the profile together: CPU, cores, SIMD flags and RAM, the devices the
installed llama.cpp can use and its system info (injected from :mod:`ponder.devices`, which
this package must not import: it would drag ``llama_cpp`` into every caller), from
:mod:`~ponder.hardware.os_probes`, Apple's facts and the GPUs the operating system sees, and
RAM's read bandwidth (:mod:`~ponder.hardware.bandwidth`, remembered per machine).
Every source is an injectable callable in :class:`~ponder.hardware.os_probes.Probes`; tests
replay recorded outputs (``tests/support/hardware_profiles``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace

from ponder.hardware.os_probes import (
    Probes,
    _AppleFacts,
    _guarded,
    _probe_apple,
    _probe_os_gpus,
)
from ponder.hardware.profile import BackendDevice, DeviceLike, HardwareProfile


def probe(probes: Probes | None = None, *, os_gpus: bool = True) -> HardwareProfile:
    """Probe this machine. ``os_gpus=False`` skips the OS GPU tools (the planner does not
    need them; only the doctor does), which saves running ``nvidia-smi`` and friends."""
    p = probes or Probes()
    notes: list[str] = []
    system, machine = p.platform()
    devices, devices_error = _probe_devices(p, notes)
    info = _probe_system_info(p, notes)
    sections = parse_system_info(info)
    apple = _probe_apple(p, notes) if system == "Darwin" else _AppleFacts()
    cpuinfo = p.read_file("/proc/cpuinfo") if system == "Linux" else None
    physical, logical = _core_counts(p)
    total, available = p.memory()
    profile = HardwareProfile(
        system=system,
        machine=machine,
        cpu_model=_cpu_model(p, devices, cpuinfo, apple),
        physical_cores=physical,
        logical_cores=logical,
        performance_cores=_performance_cores(p, system, physical, apple),
        ram_total=total,
        ram_available=available,
        devices=devices,
        devices_error=devices_error,
        cpu_flags=_cpu_flags(sections),
        build_backends=tuple(name for name in sections if name != "CPU"),
        system_info=info.strip(),
        host_cpu_flags=_host_cpu_flags(cpuinfo),
        os_gpus=_probe_os_gpus(p, system, apple, notes) if os_gpus else (),
        apple_silicon=apple.silicon,
        rosetta=apple.rosetta,
        gpu_wired_limit=apple.wired_limit,
    )
    bandwidth = _probe_bandwidth(p, profile, notes)
    return replace(profile, memory_bandwidth=bandwidth, notes=tuple(notes))


def _probe_bandwidth(p: Probes, profile: HardwareProfile, notes: list[str]) -> float | None:
    """RAM read bandwidth with the threads llama.cpp decodes with (remembered per machine)."""
    if p.bandwidth is None:
        return None
    measure = p.bandwidth
    threads = profile.performance_cores
    found = _guarded("memory bandwidth", lambda: measure(profile.fingerprint, threads), notes)
    if found is None or found <= 0:
        notes.append("memory bandwidth: not measured; speeds are guessed from the core count")
        return None
    return float(found)


def _probe_devices(p: Probes, notes: list[str]) -> tuple[tuple[BackendDevice, ...], str | None]:
    if p.ggml_devices is None:
        notes.append("llama.cpp devices: not probed")
        return (), "not probed"
    found = p.ggml_devices
    before = len(notes)
    listed = _guarded("llama.cpp devices", lambda: list(found()), notes)
    if listed is None:
        return (), notes[-1] if len(notes) > before else "failed"
    return tuple(_backend_device(d) for d in listed), None


def _backend_device(d: DeviceLike) -> BackendDevice:
    return BackendDevice(d.name, d.description, d.kind, int(d.free_bytes), int(d.total_bytes))


def _probe_system_info(p: Probes, notes: list[str]) -> str:
    if p.system_info is None:
        return ""
    return _guarded("llama.cpp system info", p.system_info, notes) or ""


def _core_counts(p: Probes) -> tuple[int, int]:
    physical, logical = p.cpu_counts()
    logical = max(1, logical or physical or os.cpu_count() or 1)
    return max(1, physical or logical), logical


# ---------------------------------------------------------------------------- CPU facts

_SYSINFO_ITEM = re.compile(
    r"^(?:(?P<section>[A-Za-z][\w .-]*?)\s*:\s*)?(?P<key>[A-Za-z][\w.]*)\s*=\s*(?P<value>.*)$"
)


def parse_system_info(text: str) -> dict[str, dict[str, str]]:
    """``llama_print_system_info()`` as ``{section: {flag: value}}``.

    Current builds print ``"CUDA : ARCHS = 890 | USE_GRAPHS = 1 | CPU : SSE3 = 1 | ..."``;
    older ones ``"AVX = 1 | AVX2 = 1 | ..."`` with no section, which means the CPU. A
    section carries on until the next one is named. Parts that do not parse are skipped.
    """
    result: dict[str, dict[str, str]] = {}
    section = "CPU"
    for part in text.split("|"):
        match = _SYSINFO_ITEM.match(part.strip())
        if not match:
            continue
        section = (match["section"] or section).strip()
        result.setdefault(section, {})[match["key"]] = match["value"].strip()
    return result


def _cpu_flags(sections: dict[str, dict[str, str]]) -> tuple[str, ...]:
    return tuple(k for k, v in sections.get("CPU", {}).items() if v == "1")


def _host_cpu_flags(cpuinfo: str | None) -> tuple[str, ...]:
    """The SIMD flags of the CPU itself (Linux), to tell an old CPU from a poor build."""
    wanted = {"avx", "avx2", "fma", "f16c", "avx512f", "avx_vnni", "asimddp", "i8mm"}
    for line in (cpuinfo or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return tuple(sorted(wanted & set(value.split())))
    return ()


def _cpuinfo_value(cpuinfo: str | None, *keys: str) -> str | None:
    for line in (cpuinfo or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in keys and value.strip():
            return value.strip()
    return None


def _cpu_model(
    p: Probes, devices: Sequence[BackendDevice], cpuinfo: str | None, apple: _AppleFacts
) -> str:
    """ggml's CPU description is the brand string on every platform; then the OS's."""
    from_ggml = next((d.description for d in devices if d.kind == "cpu"), "")
    if from_ggml and from_ggml.upper() != "CPU":
        return from_ggml
    from_os = _cpuinfo_value(cpuinfo, "model name", "hardware", "model") or apple.brand
    return from_os or p.processor().strip() or "unknown CPU"


def _performance_cores(p: Probes, system: str, physical: int, apple: _AppleFacts) -> int:
    """Token generation runs best on the performance cores alone (llama.cpp does the same)."""
    if system == "Darwin" and apple.perf_cores:
        return max(1, min(apple.perf_cores, physical))
    if system == "Linux":
        efficiency = _count_cpu_list(p.read_file("/sys/devices/cpu_atom/cpus"))
        if 0 < efficiency < physical:  # hybrid Intel: E-cores have one thread each
            return physical - efficiency
    return physical


def _count_cpu_list(text: str | None) -> int:
    """Count the CPUs in a kernel cpu list such as ``"12-19"`` or ``"0,2,4-7"``."""
    count = 0
    for part in (text or "").strip().split(","):
        first, _, last = part.partition("-")
        if first.strip().isdigit() and (not last or last.strip().isdigit()):
            count += (int(last) - int(first) + 1) if last else 1
    return count
