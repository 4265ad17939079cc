"""What this machine can run, and how to load a model on it.

Four jobs, in this order, each a plain function over plain data:

* **probe** — a frozen :class:`HardwareProfile`: CPU, cores, SIMD flags, RAM, the devices
  the installed llama.cpp can use (injected from :mod:`ponder.devices`, which this module
  must not import: it would drag ``llama_cpp`` into every caller), and the GPUs the
  operating system sees (``nvidia-smi``, sysfs / ``rocm-smi``, ``sysctl``,
  ``vulkaninfo``). Every source is an injectable callable in :class:`Probes`; a missing
  tool, a non-zero exit, a 3 s timeout or output that does not parse just leaves that
  source out, with a note. Tests replay recorded outputs (``tests/hardware_profiles``).
  NVML is not used: ``nvidia-smi`` ships with every driver that ships NVML, and its CSV
  is what a test can record.
* **diagnose** — findings with the exact fix. The important one: the OS sees a GPU the
  llama.cpp build cannot use, i.e. a CPU-only wheel (DESIGN.md "Device discovery").
* **plan** — load parameters from a memory estimate (DESIGN.md "Memory estimate"):
  weights per layer from the GGUF, KV cache
  ``n_layer × n_ctx × n_head_kv × (head_dim_k + head_dim_v) × 2`` (f16), a compute
  buffer and a margin per device, budgeted against *free* memory. When it does not fit,
  the context shrinks first (halving, never below 4,096), then fewer layers are
  offloaded, then the CPU alone; if even that does not fit, the verdict is ``too_big``.
* **fit** — the catalog against this machine: the fit table, the best quant of a model,
  and the distill to recommend.

Plus a small JSON store remembering settings that loaded, and :func:`step_down` for the
retry after an out-of-memory failure, and text renderers for ``ponder doctor``/``fit``.

How llama.cpp places a model (``llama-model.cpp``, ``llama.cpp`` in 0.3.36's vendor tree,
mirrored here so the estimate matches what will happen):

* ``n_gpu_layers`` counts ``n_layer + 1`` layers: the repeating blocks plus the output
  layer. Offloading ``g`` layers puts layers ``n_layer + 1 - g … n_layer`` on the GPUs, so
  the output layer (``output.weight``, or a copy of ``token_embd`` when tied) goes
  first. ``token_embd`` always stays on the CPU.
* Several GPUs split the offloaded layers in proportion to their free memory.
  Integrated GPUs are used only when there is no discrete one; accelerator devices
  (BLAS, AMX) only help the CPU.
* The KV cache of a layer lives with the layer. The compute buffer at ``n_ubatch`` 512
  with flash attention is ~303 MiB (1.5B) / ~311 MiB (7B), flat in context (measured,
  DESIGN.md): almost all of it is the logits, ``n_ubatch × n_vocab × 4`` bytes, on the
  device holding the output layer; the rest scales with ``n_embd`` and every device in
  use holds that part. With a partial offload llama.cpp copies CPU-layer weights to the
  GPU for large batches, so that GPU also needs room for one layer.
* On the CPU, llama.cpp repacks some quant types into a second buffer (Q4_0/Q4_K/IQ4_NL
  with AVX2; on ARM with dot-product also Q5_K/Q6_K, and Q8_0 with int8 matmul). With
  mmap the file's pages stay mapped beside the copy: +597 MiB for the 1.5B Q4_K_M,
  +2,977 MiB for the 7B (DESIGN.md), i.e. ~80 % of a Q4_K_M's layer bytes. Measured
  here with mmap off: the same 1.5B loads in 1,209 MiB instead of 1,794 MiB, because
  each tensor is read once into its final buffer. So when RAM is short the planner
  turns mmap off before it shrinks the context.
* Unified memory (Apple Silicon, integrated GPUs): the GPU maps the same RAM. Its budget
  is the smaller of the free RAM and the GPU's working-set limit (``iogpu.wired_limit_mb``
  when set, else about 2/3 of RAM up to 36 GiB and 3/4 above), and GPU and CPU shares
  together must fit the free RAM.

The margin is llama.cpp's own ``--fit`` default, 1 GiB per GPU; RAM keeps 512 MiB for the
rest of the system. Sizes from the catalog (before a download) are estimates: the
embedding and output matrices are ``vocab × hidden`` at the bits per weight llama.cpp's
quant recipes give them, and the rest of the file is split evenly over the layers.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import json
import math
import os
import platform as _platform
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import psutil

from ponder.catalog import Catalog, ModelEntry, QuantEntry
from ponder.gguf_info import GGUFInfo

MiB = 1 << 20
GiB = 1 << 30
DEFAULT_CTX = 16_384
MIN_CTX = 4_096
N_BATCH = 512
N_UBATCH = 512  # llama-cpp-python's default; the compute buffer scales with it
KV_TYPE = "f16"
KV_BYTES_PER_ELEMENT = 2
ACT_BYTES_PER_EMBD = N_UBATCH * 4 * 3  # non-logit activations, fitted to the DESIGN.md figures
GPU_MARGIN = GiB  # llama.cpp's --fit leaves 1 GiB free on each device
RAM_MARGIN = 512 * MiB
COMMAND_TIMEOUT_S = 3.0
LOW_RAM = 4 * GiB
MIN_USEFUL_GPU = 2 * GiB  # less (an APU's carve-out) is not worth a rebuild
CPU_USABLE_PARAMS_B = 8.0  # recommend(): largest distill on the CPU alone, in billions

Verdict = Literal["gpu", "partial", "cpu", "too_big"]
Severity = Literal["error", "warning", "info", "ok"]

# =============================================================================== profile


class DeviceLike(Protocol):
    """What a probe returns per device; :class:`ponder.devices.GgmlDevice` matches."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def free_bytes(self) -> int: ...
    @property
    def total_bytes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class BackendDevice:
    """A device of the installed llama.cpp (ggml's backend registry)."""

    name: str  # "CUDA0", "ROCm0", "Vulkan0", "MTL0", "BLAS", "CPU"
    description: str
    kind: str  # "cpu" | "gpu" | "igpu" | "accel" | "meta" | "unknown"
    free_bytes: int
    total_bytes: int

    @property
    def unified(self) -> bool:
        """The GPU works in system RAM (Apple Metal, integrated GPUs)."""
        return self.kind == "igpu" or self.name.startswith(("MTL", "Metal"))


@dataclass(frozen=True, slots=True)
class OsGpu:
    """A GPU the operating system reports, whether or not llama.cpp can use it."""

    vendor: str  # "nvidia" | "amd" | "intel" | "apple" | "other"
    name: str
    total_bytes: int | None
    free_bytes: int | None
    source: str  # "nvidia-smi" | "sysfs" | "rocm-smi" | "sysctl" | "vulkaninfo"
    driver: str | None = None
    integrated: bool = False


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    """Everything the planner and the doctor know about this machine."""

    system: str  # platform.system(): "Linux", "Darwin", "Windows"
    machine: str  # platform.machine(): "x86_64", "arm64", "AMD64"
    cpu_model: str
    physical_cores: int
    logical_cores: int
    performance_cores: int  # P-cores on Apple Silicon and hybrid Intel, else physical
    ram_total: int
    ram_available: int
    devices: tuple[BackendDevice, ...] = ()  # as llama.cpp sees them
    devices_error: str | None = None  # why the llama.cpp device list is missing
    cpu_flags: tuple[str, ...] = ()  # llama.cpp CPU backend flags that are on ("AVX2", ...)
    build_backends: tuple[str, ...] = ()  # other sections of the system info ("CUDA", ...)
    system_info: str = ""
    host_cpu_flags: tuple[str, ...] = ()  # from /proc/cpuinfo: does the CPU itself have AVX2?
    os_gpus: tuple[OsGpu, ...] = ()
    apple_silicon: bool = False
    rosetta: bool = False
    gpu_wired_limit: int | None = None  # iogpu.wired_limit_mb in bytes, when set
    notes: tuple[str, ...] = ()

    @property
    def offload_devices(self) -> tuple[BackendDevice, ...]:
        """The devices llama.cpp offloads layers to: GPUs, else integrated GPUs."""
        gpus = tuple(d for d in self.devices if d.kind == "gpu")
        return gpus or tuple(d for d in self.devices if d.kind == "igpu")

    @property
    def simd(self) -> tuple[str, ...]:
        """The instruction-set flags among :attr:`cpu_flags` (build options left out)."""
        return tuple(f for f in self.cpu_flags if f not in _BUILD_OPTIONS)

    @property
    def is_x86(self) -> bool:
        return self.machine.lower() in _X86_MACHINES

    @property
    def fingerprint(self) -> str:
        """Stable across runs and free memory; changes with the CPU, RAM size or GPUs."""
        gpus = [(d.name, d.description, round(d.total_bytes / GiB)) for d in self.offload_devices]
        key = [self.system, self.machine, self.cpu_model, self.physical_cores]
        key += [round(self.ram_total / GiB), gpus]
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return digest[:16]


_X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})
_BUILD_OPTIONS = frozenset(
    {"LLAMAFILE", "OPENMP", "REPACK", "ACCELERATE", "KLEIDIAI", "BLAS", "EMBED_LIBRARY"}
)

# ================================================================================ probes


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
    they are not probed (this module may not import llama.cpp).
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
    return HardwareProfile(
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
        notes=tuple(notes),
    )


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


# ============================================================================= diagnosis


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of ``ponder doctor``: what is wrong (or fine) and the exact fix."""

    severity: Severity
    message: str
    fix: str | None = None


PIP_REINSTALL = "pip install --force-reinstall --no-cache-dir llama-cpp-python"
WHEEL_INDEX = "https://abetlen.github.io/llama-cpp-python/whl"
# (vendor) -> (backend name, CMake flag, prebuilt wheel index suffix on Linux, on Windows)
_GPU_BUILDS = {
    "nvidia": ("CUDA", "-DGGML_CUDA=on", None, None),  # the CUDA wheel depends on the driver
    "amd": ("ROCm", "-DGGML_HIP=on", "rocm72", "hip-radeon"),
    "apple": ("Metal", "-DGGML_METAL=on", "metal", "metal"),
    "intel": ("Vulkan", "-DGGML_VULKAN=on", "vulkan", "vulkan"),
    "other": ("Vulkan", "-DGGML_VULKAN=on", "vulkan", "vulkan"),
}
# CUDA wheels by the driver each needs (CUDA release notes, "CUDA Toolkit and Corresponding
# Driver Versions", GA releases; Linux, Windows). cu124 builds run on compute 6.0 and newer.
_CUDA_WHEELS = (
    ("cu124", (550, 54, 14), (551, 61)),
    ("cu122", (535, 54, 3), (536, 25)),
    ("cu121", (530, 30, 2), (531, 14)),
    ("cu118", (520, 61, 5), (520, 6)),
)
_BLACKWELL = re.compile(r"RTX 50\d0|RTX PRO \d+ Blackwell|\bB[12]00\b|GB10", re.IGNORECASE)
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2, "ok": 3}


def reinstall_command(cmake_flag: str, system: str) -> str:
    """The one-line source rebuild with ``cmake_flag``, in the platform's shell syntax."""
    if system == "Windows":
        return f'$env:CMAKE_ARGS = "{cmake_flag}"; {PIP_REINSTALL}'
    return f'CMAKE_ARGS="{cmake_flag}" {PIP_REINSTALL}'


def cuda_wheel(driver: str | None, system: str, gpu_name: str = "") -> str | None:
    """The prebuilt CUDA wheel index (``cu124`` …) this driver can run, if any."""
    version = tuple(_to_int(part) or 0 for part in (driver or "").split("."))
    if not driver or _BLACKWELL.search(gpu_name):
        return None  # Blackwell needs CUDA 12.8+: build from source
    for tag, linux, windows in _CUDA_WHEELS:
        if version >= (windows if system == "Windows" else linux):
            return tag
    return None


def diagnose(hw: HardwareProfile) -> list[Finding]:
    """Everything worth telling the user about this machine, most serious first."""
    findings = [
        *_device_findings(hw),
        *_rosetta_findings(hw),
        *_unused_gpu_findings(hw),
        *_simd_findings(hw),
        *_memory_findings(hw),
    ]
    if not any(f.severity in ("error", "warning") for f in findings):
        findings.append(Finding("ok", "no problems found"))
    return sorted(findings, key=lambda f: _SEVERITY_ORDER[f.severity])


def _device_findings(hw: HardwareProfile) -> list[Finding]:
    if hw.devices_error == "not probed":
        return [Finding("info", "the llama.cpp device list was not probed")]
    if hw.devices_error is not None:
        return [
            Finding(
                "error",
                f"llama-cpp-python could not be loaded ({hw.devices_error})",
                PIP_REINSTALL,
            )
        ]
    found = [
        Finding("ok", f"llama.cpp offloads to {d.name} ({d.description}, {gib(d.free_bytes)} free)")
        for d in hw.offload_devices
    ]
    gpu_backends = [b for b in hw.build_backends if b in _BACKEND_HINTS]
    if not hw.offload_devices and gpu_backends:
        backend = gpu_backends[0]
        found.append(
            Finding(
                "warning",
                f"this llama-cpp-python was built with {backend} but finds no GPU",
                _BACKEND_HINTS[backend],
            )
        )
    return found


_BACKEND_HINTS = {
    "CUDA": "check that `nvidia-smi` works and that CUDA_VISIBLE_DEVICES does not hide the GPU",
    "ROCm": "check that `rocm-smi` works, that HIP_VISIBLE_DEVICES does not hide the GPU, "
    "and that your user is in the 'render' and 'video' groups",
    "Vulkan": "check that `vulkaninfo --summary` lists the GPU (install the Vulkan driver)",
    "Metal": "check that `system_profiler SPDisplaysDataType` lists the GPU; update macOS",
}


def _rosetta_findings(hw: HardwareProfile) -> list[Finding]:
    if not hw.rosetta:
        return []
    fix = (
        "install an arm64 Python (the python.org universal2 installer, or Homebrew under "
        '/opt/homebrew); check that `python3 -c "import platform; print(platform.machine())"` '
        "prints arm64; then recreate the virtual environment and reinstall: "
        f"{PIP_REINSTALL} (on arm64 llama.cpp builds with Metal by default)"
    )
    return [
        Finding(
            "error",
            "Python runs under Rosetta 2 (x86_64 emulation on Apple Silicon): llama.cpp "
            "cannot use the GPU and runs emulated CPU code, many times slower",
            fix,
        )
    ]


def _unused_gpu_findings(hw: HardwareProfile) -> list[Finding]:
    if hw.rosetta or hw.devices_error is not None:
        return []
    useful = [g for g in hw.os_gpus if _worth_offloading(g)]
    if not hw.offload_devices:
        if any(b in _BACKEND_HINTS for b in hw.build_backends):
            return []  # a GPU build that finds no GPU: _device_findings says why
        return [_cpu_only_build(hw, gpu) for gpu in _one_per_vendor(useful)]
    return _missing_gpu_findings(hw, useful)


def _worth_offloading(gpu: OsGpu) -> bool:
    if gpu.vendor == "apple":
        return True
    return not gpu.integrated and (gpu.total_bytes is None or gpu.total_bytes >= MIN_USEFUL_GPU)


def _one_per_vendor(gpus: Iterable[OsGpu]) -> list[OsGpu]:
    seen: dict[str, OsGpu] = {}
    for gpu in gpus:
        seen.setdefault(gpu.vendor, gpu)
    return list(seen.values())


def _cpu_only_build(hw: HardwareProfile, gpu: OsGpu) -> Finding:
    backend, flag, linux_wheel, windows_wheel = _GPU_BUILDS[gpu.vendor]
    size = f", {gib(gpu.total_bytes)}" if gpu.total_bytes and gpu.vendor != "apple" else ""
    fix = f"reinstall it with {backend}:\n  {reinstall_command(flag, hw.system)}"
    wheel = _wheel_for(hw, gpu, linux_wheel, windows_wheel)
    if wheel:
        fix += (
            "\nor install the prebuilt wheel (Python 3.10-3.12):\n"
            f"  {PIP_REINSTALL} --extra-index-url {WHEEL_INDEX}/{wheel}"
        )
    if gpu.vendor == "nvidia" and gpu.source == "sysfs":
        fix = "install the NVIDIA driver (nvidia-smi is missing), then " + fix
    return Finding(
        "warning",
        f"your llama-cpp-python is a CPU-only build: it cannot use the {gpu.name}{size}",
        fix,
    )


def _wheel_for(
    hw: HardwareProfile, gpu: OsGpu, linux_wheel: str | None, windows_wheel: str | None
) -> str | None:
    if gpu.vendor == "nvidia":
        return cuda_wheel(gpu.driver, hw.system, gpu.name)
    if hw.system == "Darwin" and gpu.vendor != "apple":
        return None
    return windows_wheel if hw.system == "Windows" else linux_wheel


def _missing_gpu_findings(hw: HardwareProfile, useful: list[OsGpu]) -> list[Finding]:
    findings: list[Finding] = []
    discrete = [g for g in useful if g.vendor != "apple"]
    in_use = [d for d in hw.offload_devices if not d.unified]
    if len(in_use) < len(discrete):
        findings.append(
            Finding(
                "warning",
                f"llama.cpp uses {len(in_use)} of the {len(discrete)} GPUs this machine has",
                "check CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES / GGML_VK_VISIBLE_DEVICES",
            )
        )
    if any(d.name.startswith("Vulkan") for d in in_use) and any(
        g.vendor == "nvidia" for g in discrete
    ):
        flag = _GPU_BUILDS["nvidia"][1]
        findings.append(
            Finding(
                "info",
                "llama.cpp runs on the NVIDIA GPU through Vulkan; CUDA is usually faster",
                reinstall_command(flag, hw.system),
            )
        )
    return findings


def _simd_findings(hw: HardwareProfile) -> list[Finding]:
    if not hw.is_x86 or hw.rosetta or not hw.cpu_flags or "AVX2" in hw.cpu_flags:
        return []
    if "avx2" in hw.host_cpu_flags:
        return [
            Finding(
                "warning",
                "llama.cpp was built without AVX2, which this CPU has: CPU generation runs "
                "several times slower than it could",
                reinstall_command("-DGGML_NATIVE=on", hw.system),
            )
        ]
    return [
        Finding(
            "warning",
            "this CPU has no AVX2: generation on the CPU will be slow",
            "use a GPU build, or a small model such as r1:1.5b",
        )
    ]


def _memory_findings(hw: HardwareProfile) -> list[Finding]:
    if hw.ram_available >= LOW_RAM:
        return []
    return [
        Finding(
            "warning",
            f"only {gib(hw.ram_available)} of {gib(hw.ram_total)} RAM is free",
            "close other programs, or use a small model such as r1:1.5b",
        )
    ]


# =========================================================================== model facts

# Bits per weight of token_embd and output.weight in llama.cpp's quant recipes (output is
# Q6_K for the K- and IQ-quants); used to split a catalog size before download.
_EDGE_BPW: dict[str, tuple[float, float]] = {
    "Q2_K": (2.625, 6.5625),
    "Q3_K_M": (3.4375, 6.5625),
    "Q4_0": (4.5, 6.5625),
    "Q4_K_S": (4.5, 6.5625),
    "Q4_K_M": (4.5, 6.5625),
    "IQ4_NL": (4.5, 6.5625),
    "IQ4_XS": (4.25, 6.5625),
    "Q5_K_S": (5.5, 6.5625),
    "Q5_K_M": (5.5, 6.5625),
    "Q6_K": (6.5625, 6.5625),
    "Q8_0": (8.5, 8.5),
    "F16": (16.0, 16.0),
    "BF16": (16.0, 16.0),
}
_DEFAULT_EDGE_BPW = (6.0, 6.5625)
_TIED_RATIO = 0.85  # other_bytes well below two matrices' worth: one tied matrix (even Q8_0)

# Share of a CPU layer's bytes that llama.cpp repacks into a second buffer (see the
# module docstring). x86 needs AVX2; ARM needs the dot-product extension.
_REPACK_X86 = {"Q4_0": 1.0, "IQ4_NL": 1.0, "Q4_K_S": 0.95, "Q4_K_M": 0.8}
_REPACK_ARM = dict.fromkeys(("Q4_0", "IQ4_NL", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"), 1.0)
_REPACK_UNKNOWN = 0.8  # a file whose quant is unknown: assume a Q4_K_M


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the planner needs to know about a model, from its GGUF or its catalog entry."""

    name: str
    quant: str | None
    file_size: int
    n_layer: int
    layer_bytes: tuple[int, ...]  # per repeating block
    output_bytes: int  # goes with the output layer (to the GPU first)
    embd_bytes: int  # token_embd: always on the CPU
    tied: bool  # output is a copy of token_embd (only made when the output is offloaded)
    n_ctx_train: int
    kv_bytes_per_token: int  # all layers, f16
    n_vocab: int
    n_embd: int
    exact: bool  # True: from the GGUF's tensor sizes; False: estimated from the catalog

    @property
    def weight_bytes(self) -> int:
        return sum(self.layer_bytes) + self.embd_bytes + (0 if self.tied else self.output_bytes)

    @property
    def kv_bytes_per_token_layer(self) -> int:
        return self.kv_bytes_per_token // max(1, self.n_layer)

    @classmethod
    def from_gguf(cls, info: GGUFInfo, *, output_bytes: int | None = None) -> ModelFacts:
        """From a GGUF header. ``output_bytes`` (the ``output.*`` tensors) is exact when the
        caller has it; otherwise ``other_bytes`` is split by the quant recipe's bits per
        weight, and a file with one matrix's worth is taken as tied."""
        embd, output, tied = _split_other(
            info.other_bytes, info.n_vocab, info.n_embd, info.file_type, output_bytes
        )
        return cls(
            name=info.name or info.path.name,
            quant=info.file_type,
            file_size=info.file_size,
            n_layer=info.n_layer,
            layer_bytes=tuple(info.layer_bytes),
            output_bytes=output,
            embd_bytes=embd,
            tied=tied,
            n_ctx_train=info.n_ctx_train,
            kv_bytes_per_token=info.kv_bytes_per_token,
            n_vocab=info.n_vocab,
            n_embd=info.n_embd,
            exact=True,
        )

    @classmethod
    def from_catalog(cls, model: ModelEntry, quant: QuantEntry) -> ModelFacts | None:
        """An estimate before download; None when the entry has no architecture numbers."""
        arch = model.arch
        if arch is None:
            return None
        embd_bpw, out_bpw = _EDGE_BPW.get(quant.quant.upper(), _DEFAULT_EDGE_BPW)
        matrix = arch.vocab_size * arch.hidden_size
        embd, output = int(matrix * embd_bpw / 8), int(matrix * out_bpw / 8)
        rest = quant.size_bytes - embd - output
        if rest <= 0:  # a size that cannot be right for this shape: spread it all
            embd, output, rest = 0, 0, quant.size_bytes
        return cls(
            name=model.short_name,
            quant=quant.quant,
            file_size=quant.size_bytes,
            n_layer=arch.layers,
            layer_bytes=_spread(rest, arch.layers),
            output_bytes=output,
            embd_bytes=embd,
            tied=False,
            n_ctx_train=arch.context_length,
            kv_bytes_per_token=arch.kv_cache_bytes_per_token(KV_BYTES_PER_ELEMENT),
            n_vocab=arch.vocab_size,
            n_embd=arch.hidden_size,
            exact=False,
        )


def _split_other(
    other: int, n_vocab: int, n_embd: int, quant: str | None, output_bytes: int | None
) -> tuple[int, int, bool]:
    """(token_embd bytes, output-layer bytes, tied) from the non-layer tensor bytes."""
    if output_bytes == 0:  # no output.weight: llama.cpp offloads a copy of token_embd
        return other, other, True
    if output_bytes is not None:
        return max(0, other - output_bytes), output_bytes, False
    embd_bpw, out_bpw = _EDGE_BPW.get((quant or "").upper(), _DEFAULT_EDGE_BPW)
    untied = n_vocab * n_embd * (embd_bpw + out_bpw) / 8
    if untied and other < _TIED_RATIO * untied:
        return other, other, True
    output = int(other * out_bpw / (embd_bpw + out_bpw))
    return other - output, output, False


def _spread(total: int, parts: int) -> tuple[int, ...]:
    share, extra = divmod(total, parts)
    return tuple(share + (1 if i < extra else 0) for i in range(parts))


def repack_share(quant: str | None, hw: HardwareProfile) -> float:
    """The share of a CPU layer's bytes llama.cpp copies into its repack buffer."""
    flags = set(hw.cpu_flags)
    if quant is None:
        return _REPACK_UNKNOWN if flags & {"AVX2", "DOTPROD"} else 0.0
    name = quant.upper()
    if "AVX2" in flags:
        return _REPACK_X86.get(name, 0.0)
    if "DOTPROD" in flags:
        if name == "Q8_0":
            return 1.0 if "MATMUL_INT8" in flags else 0.0
        return _REPACK_ARM.get(name, 0.0)
    return 0.0


# ============================================================================== estimate


@dataclass(frozen=True, slots=True)
class DeviceUse:
    """The memory one device needs under a plan, against what it has free."""

    device: str  # "CPU" or a llama.cpp device name
    description: str
    layers: int  # of the n_layer + 1 offloadable layers
    weights: int
    kv: int
    compute: int
    margin: int
    budget: int
    unified: bool = False  # lives in system RAM (Apple, integrated GPU)

    @property
    def need(self) -> int:
        return self.weights + self.kv + self.compute + self.margin

    @property
    def fits(self) -> bool:
        return self.need <= self.budget


@dataclass(frozen=True, slots=True)
class Estimate:
    """Memory per device; GPUs first, the CPU last."""

    devices: tuple[DeviceUse, ...]
    ram_need: int  # everything in system RAM, unified GPUs included
    ram_budget: int

    @property
    def cpu(self) -> DeviceUse:
        return self.devices[-1]

    @property
    def gpus(self) -> tuple[DeviceUse, ...]:
        return self.devices[:-1]

    @property
    def fits(self) -> bool:
        return all(d.fits for d in self.devices) and self.ram_need <= self.ram_budget

    @property
    def weights_gpu(self) -> int:
        return sum(d.weights for d in self.gpus)

    @property
    def weights_cpu(self) -> int:
        return self.cpu.weights

    @property
    def kv(self) -> int:
        return sum(d.kv for d in self.devices)

    @property
    def compute(self) -> int:
        return sum(d.compute for d in self.devices)

    @property
    def total(self) -> int:
        """Weights, KV cache and compute buffers on all devices, margins left out."""
        return sum(d.weights + d.kv + d.compute for d in self.devices)


def gpu_budget(device: BackendDevice, hw: HardwareProfile) -> int:
    """What a device may use: its free memory, or for unified memory the working-set limit."""
    if not device.unified:
        return device.free_bytes
    budget = hw.ram_available
    if device.free_bytes > 0:
        budget = min(budget, device.free_bytes)
    if hw.apple_silicon:
        budget = min(budget, hw.gpu_wired_limit or apple_gpu_limit(hw.ram_total))
    return budget


def apple_gpu_limit(ram_total: int) -> int:
    """macOS's default GPU working set: about 2/3 of RAM up to 36 GiB, 3/4 above."""
    return ram_total * 2 // 3 if ram_total <= 36 * GiB else ram_total * 3 // 4


def layer_owners(n_layer: int, n_gpu_layers: int, free: Sequence[int]) -> list[int]:
    """Device index of each of the n_layer + 1 layers (-1: CPU), as llama.cpp assigns them."""
    full = n_layer + 1
    g = min(max(n_gpu_layers, 0), full) if free else 0
    if g == 0:
        return [-1] * full
    start = full - g
    total = sum(free)
    shares = [f / total for f in free] if total > 0 else [1 / len(free)] * len(free)
    splits = [sum(shares[: i + 1]) for i in range(len(shares))]
    last = len(free) - 1
    return [
        -1 if il < start else min(bisect.bisect_right(splits, (il - start) / g), last)
        for il in range(full)
    ]


def estimate(
    model: ModelFacts, hw: HardwareProfile, n_gpu_layers: int, n_ctx: int, *, use_mmap: bool
) -> Estimate:
    """Memory per device for one load configuration."""
    gpus = hw.offload_devices
    owners = layer_owners(model.n_layer, n_gpu_layers, [d.free_bytes for d in gpus])
    rows = [_Row() for _ in gpus] + [_Row()]  # the CPU last
    _place_layers(model, owners, rows, n_ctx)
    cpu = rows[-1]
    cpu.weights += model.embd_bytes
    cpu.weights += int(cpu.repeat_bytes * repack_share(model.quant, hw)) if use_mmap else 0
    _place_compute(model, owners, rows)
    uses = [_gpu_use(row, d, hw) for row, d in zip(rows, gpus, strict=False)]
    cpu_use = DeviceUse(
        device="CPU",
        description=hw.cpu_model,
        layers=cpu.layers,
        weights=cpu.weights,
        kv=cpu.kv,
        compute=cpu.compute,
        margin=RAM_MARGIN,
        budget=hw.ram_available,
    )
    ram_need = cpu_use.need + sum(u.weights + u.kv + u.compute for u in uses if u.unified)
    return Estimate((*uses, cpu_use), ram_need, hw.ram_available)


@dataclass(slots=True)
class _Row:
    layers: int = 0
    repeat_bytes: int = 0  # repeating-layer weights (what the CPU repacks)
    weights: int = 0
    kv: int = 0
    compute: int = 0


def _place_layers(model: ModelFacts, owners: list[int], rows: list[_Row], n_ctx: int) -> None:
    kv_layer = model.kv_bytes_per_token_layer * n_ctx
    for il, owner in enumerate(owners):
        row = rows[owner]  # -1 is the CPU row
        row.layers += 1
        if il < model.n_layer:
            row.weights += model.layer_bytes[il]
            row.repeat_bytes += model.layer_bytes[il]
            row.kv += kv_layer
        elif owner >= 0 or not model.tied:  # a tied output on the CPU is token_embd itself
            row.weights += model.output_bytes


def _place_compute(model: ModelFacts, owners: list[int], rows: list[_Row]) -> None:
    activations = ACT_BYTES_PER_EMBD * model.n_embd
    for index, row in enumerate(rows):
        if row.layers or index == len(rows) - 1:
            row.compute += activations
    rows[owners[-1]].compute += N_UBATCH * model.n_vocab * 4  # logits, with the output layer
    partial = owners[-1] >= 0 and owners[0] < 0
    if partial:  # CPU-layer weights pass through the first GPU for large batches
        rows[0].compute += max(model.layer_bytes, default=0)


def _gpu_use(row: _Row, device: BackendDevice, hw: HardwareProfile) -> DeviceUse:
    margin = GPU_MARGIN if row.layers else 0
    compute = row.compute if row.layers else 0
    return DeviceUse(
        device=device.name,
        description=device.description,
        layers=row.layers,
        weights=row.weights,
        kv=row.kv,
        compute=compute,
        margin=margin,
        budget=gpu_budget(device, hw),
        unified=device.unified,
    )


# ================================================================================= plan


@dataclass(frozen=True, slots=True)
class WorkingSettings:
    """Load settings that worked for one model on one machine (see :class:`LoadMemory`)."""

    n_gpu_layers: int
    n_ctx: int
    use_mmap: bool = True
    after_oom: bool = False  # reached by step_down() after an out-of-memory failure


@dataclass(frozen=True, slots=True)
class Overrides:
    """What the user asked for (--gpu-layers, --ctx, --threads) and what worked before."""

    n_gpu_layers: int | None = None  # -1: all layers
    n_ctx: int | None = None
    n_threads: int | None = None
    remembered: WorkingSettings | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """How to load a model here, why, and what it will cost."""

    verdict: Verdict
    n_gpu_layers: int  # llama.cpp's count: 0 … n_layers_total (repeating blocks + output)
    n_layers_total: int
    n_ctx: int
    n_threads: int
    n_threads_batch: int
    estimate: Estimate
    model_name: str = ""
    n_batch: int = N_BATCH
    flash_attn: bool = True
    kv_type: str = KV_TYPE
    use_mmap: bool = True
    use_mlock: bool = False
    notes: tuple[str, ...] = ()  # why the plan is what it is
    warnings: tuple[str, ...] = ()  # what the user should see even without --verbose

    @property
    def fits(self) -> bool:
        return self.verdict != "too_big" and self.estimate.fits

    def working_settings(self, *, after_oom: bool = False) -> WorkingSettings:
        return WorkingSettings(self.n_gpu_layers, self.n_ctx, self.use_mmap, after_oom)


@dataclass(frozen=True, slots=True)
class _Config:
    n_gpu_layers: int
    n_ctx: int
    use_mmap: bool


def default_context(model: ModelFacts) -> int:
    return max(1, min(DEFAULT_CTX, model.n_ctx_train))


def context_floor(model: ModelFacts) -> int:
    return max(1, min(MIN_CTX, model.n_ctx_train))


def context_ladder(top: int, floor: int) -> list[int]:
    """``top`` halved down to ``floor``: 16384, 8192, 4096."""
    ladder = [max(top, floor)]
    while ladder[-1] > floor:
        ladder.append(max(floor, ladder[-1] // 2))
    return ladder


def plan(model: ModelFacts, hw: HardwareProfile, overrides: Overrides | None = None) -> Plan:
    """The load parameters for ``model`` on ``hw`` (pure: no probing, no I/O)."""
    ov = overrides or Overrides()
    notes: list[str] = []
    ladder = _ladder(model, ov, notes)
    layers = _layer_options(model, hw, ov, notes)
    mmaps = _mmap_options(ov)
    found = _search(model, hw, layers, ladder, mmaps)
    if found is not None:
        return _build(model, hw, ov, found, notes)
    if _overridden(ov):
        fallback = _Config(layers[0], ladder[-1], use_mmap=False)
        return _build(model, hw, ov, fallback, notes)
    return _too_big(model, hw, ov, ladder[-1], notes)


def _overridden(ov: Overrides) -> bool:
    return ov.n_gpu_layers is not None or ov.n_ctx is not None


def _ladder(model: ModelFacts, ov: Overrides, notes: list[str]) -> list[int]:
    if ov.n_ctx is not None:
        if ov.n_ctx > model.n_ctx_train:
            notes.append(
                f"context {ov.n_ctx:,} is above the model's trained {model.n_ctx_train:,}; capped"
            )
        return [max(1, min(ov.n_ctx, model.n_ctx_train))]
    top, floor = default_context(model), context_floor(model)
    remembered = ov.remembered
    if remembered is not None and remembered.after_oom:
        top = max(floor, min(top, remembered.n_ctx))
    return context_ladder(top, floor)


def _layer_options(
    model: ModelFacts, hw: HardwareProfile, ov: Overrides, notes: list[str]
) -> list[int]:
    full = model.n_layer + 1
    if not hw.offload_devices:
        if ov.n_gpu_layers:
            notes.append("this llama.cpp build has no GPU device: --gpu-layers is ignored")
        return [0]
    if ov.n_gpu_layers is not None:
        wanted = full if ov.n_gpu_layers < 0 else min(ov.n_gpu_layers, full)
        return [wanted]
    top = full
    if ov.remembered is not None and ov.remembered.after_oom:
        top = min(full, max(0, ov.remembered.n_gpu_layers))
    return list(range(top, -1, -1))


def _mmap_options(ov: Overrides) -> tuple[bool, ...]:
    remembered = ov.remembered
    if remembered is not None and remembered.after_oom and not remembered.use_mmap:
        return (False,)
    return (True, False)


def _search(
    model: ModelFacts,
    hw: HardwareProfile,
    layers: list[int],
    ladder: list[int],
    mmaps: tuple[bool, ...],
) -> _Config | None:
    """Most layers that fit at the smallest context; then the largest context for them."""
    for g in layers:
        if _fitting(model, hw, g, ladder[-1], mmaps) is None:
            continue
        for n_ctx in ladder:
            found = _fitting(model, hw, g, n_ctx, mmaps)
            if found is not None:
                return found
    return None


def _fitting(
    model: ModelFacts, hw: HardwareProfile, g: int, n_ctx: int, mmaps: tuple[bool, ...]
) -> _Config | None:
    for use_mmap in mmaps:
        if estimate(model, hw, g, n_ctx, use_mmap=use_mmap).fits:
            return _Config(g, n_ctx, use_mmap)
    return None


def _verdict(g: int, full: int) -> Verdict:
    return "gpu" if g >= full else "partial" if g > 0 else "cpu"


def _build(
    model: ModelFacts, hw: HardwareProfile, ov: Overrides, config: _Config, notes: list[str]
) -> Plan:
    full = model.n_layer + 1
    est = estimate(model, hw, config.n_gpu_layers, config.n_ctx, use_mmap=config.use_mmap)
    g = config.n_gpu_layers if hw.offload_devices else 0
    notes = notes + _why(model, hw, ov, config)
    warnings = [] if est.fits else _misfit(est)
    threads = max(1, ov.n_threads or hw.performance_cores)
    return Plan(
        verdict=_verdict(g, full),
        n_gpu_layers=g,
        n_layers_total=full,
        n_ctx=config.n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        estimate=est,
        model_name=model.name,
        use_mmap=config.use_mmap,
        notes=tuple(notes),
        warnings=tuple(warnings),
    )


def _why(model: ModelFacts, hw: HardwareProfile, ov: Overrides, config: _Config) -> list[str]:
    why: list[str] = []
    default = default_context(model)
    full = model.n_layer + 1
    if ov.n_ctx is None and config.n_ctx < default:
        why.append(f"context reduced from {default:,} to {config.n_ctx:,} tokens to fit")
    if ov.n_gpu_layers is None and hw.offload_devices and config.n_gpu_layers < full:
        why.append(
            f"{config.n_gpu_layers} of {full} layers fit on the GPU; the rest run on the CPU"
        )
    if not config.use_mmap:
        why.append("memory-mapping off: the CPU's repacked weights replace the file's pages")
    if ov.remembered is not None and ov.remembered.after_oom:
        why.append("starting from settings that loaded after an out-of-memory failure")
    return why


def _misfit(est: Estimate) -> list[str]:
    out = [
        f"will not fit: {d.device} needs {gib(d.need)}, has {gib(d.budget)} free"
        for d in est.devices
        if not d.fits
    ]
    if est.ram_need > est.ram_budget and est.cpu.fits:
        out.append(f"will not fit: RAM needs {gib(est.ram_need)}, has {gib(est.ram_budget)} free")
    return out


def _too_big(
    model: ModelFacts, hw: HardwareProfile, ov: Overrides, floor: int, notes: list[str]
) -> Plan:
    full = model.n_layer + 1
    g = full if hw.offload_devices else 0
    est = estimate(model, hw, g, floor, use_mmap=False)
    message = refusal(model, hw, est, floor)
    threads = max(1, ov.n_threads or hw.performance_cores)
    return Plan(
        verdict="too_big",
        n_gpu_layers=g,
        n_layers_total=full,
        n_ctx=floor,
        n_threads=threads,
        n_threads_batch=threads,
        estimate=est,
        model_name=model.name,
        use_mmap=False,
        notes=tuple(notes),
        warnings=(message,),
    )


def refusal(model: ModelFacts, hw: HardwareProfile, est: Estimate, n_ctx: int) -> str:
    """Why a model cannot run here, with the numbers."""
    label = f"{model.name} {model.quant}" if model.quant else model.name
    need = est.total + sum(d.margin for d in est.devices)
    free = [f"{gib(d.budget)} on {d.device}" for d in est.gpus if not d.unified]
    free.append(f"{gib(hw.ram_available)} of RAM")
    return (
        f"{label} needs about {gib(need)} at {n_ctx:,} tokens of context "
        f"(weights {gib(model.weight_bytes)}, KV cache {gib(est.kv)}, compute {gib(est.compute)}, "
        f"headroom {gib(need - est.total)}); this machine has {' and '.join(free)} free"
    )


# ======================================================================= out-of-memory retry


def step_down(plan_: Plan, model: ModelFacts, hw: HardwareProfile) -> Plan | None:
    """The next smaller configuration after an out-of-memory load failure, or None.

    Fewer GPU layers first (an eighth of them at a time), then half the context (never
    below the floor), then memory-mapping off; each step re-estimated for the record.
    """
    full = model.n_layer + 1
    g, n_ctx, use_mmap = plan_.n_gpu_layers, plan_.n_ctx, plan_.use_mmap
    if g > 0:
        g = max(0, g - max(1, full // 8))
    elif n_ctx > context_floor(model):
        n_ctx = max(context_floor(model), n_ctx // 2)
    elif use_mmap:
        use_mmap = False
    else:
        return None
    est = estimate(model, hw, g, n_ctx, use_mmap=use_mmap)
    note = f"stepped down after an out-of-memory failure: {g}/{full} layers, context {n_ctx:,}"
    return replace(
        plan_,
        verdict=_verdict(g, full),
        n_gpu_layers=g,
        n_ctx=n_ctx,
        use_mmap=use_mmap,
        estimate=est,
        notes=(*plan_.notes, note),
        warnings=tuple(_misfit(est)),
    )


# ============================================================================ fit table

QUANT_PRECISION = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS")  # best first
_VERDICT_RANK = {"gpu": 0, "partial": 1, "cpu": 2, "too_big": 3}
R1_FAMILY = "deepseek-r1-distill"


@dataclass(frozen=True, slots=True)
class FitRow:
    """One model × quant against this machine."""

    model: ModelEntry
    quant: QuantEntry
    plan: Plan
    need_bytes: int  # weights + KV + compute at the default context, margins left out

    @property
    def verdict(self) -> Verdict:
        return self.plan.verdict


def params_billions(model: ModelEntry) -> float | None:
    """``"1.5B"`` → 1.5; None when the catalog does not say."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([BM])\s*", model.params or "", re.IGNORECASE)
    if not match:
        return None
    value = float(match[1])
    return value / 1000 if match[2].upper() == "M" else value


def precision_rank(quant: str) -> int:
    """0 for the most precise of :data:`QUANT_PRECISION`; unknown quants rank last."""
    name = quant.upper()
    return QUANT_PRECISION.index(name) if name in QUANT_PRECISION else len(QUANT_PRECISION)


def plan_quant(model: ModelEntry, quant: QuantEntry, hw: HardwareProfile) -> Plan | None:
    """The plan for a catalog entry before download (None without architecture numbers)."""
    facts = ModelFacts.from_catalog(model, quant)
    return None if facts is None else plan(facts, hw)


def fit_row(model: ModelEntry, quant: QuantEntry, hw: HardwareProfile) -> FitRow | None:
    facts = ModelFacts.from_catalog(model, quant)
    if facts is None:
        return None
    chosen = plan(facts, hw)
    at_default = estimate(
        facts, hw, chosen.n_gpu_layers, default_context(facts), use_mmap=chosen.use_mmap
    )
    return FitRow(model, quant, chosen, at_default.total)


def fit_table(models: Catalog | Iterable[ModelEntry], hw: HardwareProfile) -> list[FitRow]:
    """Every model × quant with its verdict, best first: runs fully on the GPU before
    partly, before CPU only, before too big; then larger models, then higher precision.
    Models without architecture numbers are left out."""
    rows = [row for m in models for q in m.quants if (row := fit_row(m, q, hw)) is not None]
    return sorted(rows, key=_fit_key)


def _fit_key(row: FitRow) -> tuple[int, float, int, int]:
    params = params_billions(row.model) or row.quant.size_bytes / 1e9
    return (_VERDICT_RANK[row.verdict], -params, precision_rank(row.quant.quant), -row.plan.n_ctx)


def _by_precision(model: ModelEntry) -> list[QuantEntry]:
    return sorted(model.quants, key=lambda q: (precision_rank(q.quant), -q.size_bytes))


def _quant_plans(model: ModelEntry, hw: HardwareProfile) -> list[tuple[QuantEntry, Plan]]:
    """Every quant of ``model`` with its plan, most precise first."""
    plans = [(q, plan_quant(model, q, hw)) for q in _by_precision(model)]
    return [(q, p) for q, p in plans if p is not None]


def _off_gpu_quants(
    model: ModelEntry, plans: list[tuple[QuantEntry, Plan]]
) -> list[tuple[QuantEntry, Plan]]:
    """Quants no larger than the default, the default first: off the GPU every token reads
    all the weights from RAM, so a bigger quant buys precision with speed."""
    limit = model.default.size_bytes
    small = [(q, p) for q, p in plans if q.size_bytes <= limit]
    return sorted(small, key=lambda qp: qp[0].quant != model.default.quant)


def best_quant(
    model: ModelEntry, hw: HardwareProfile, *, speed_off_gpu: bool = True
) -> QuantEntry | None:
    """The most precise quant that runs fully on the GPU at the default context; else
    the most precise that fits at all. With ``speed_off_gpu`` (the default) that second
    choice is limited to quants no larger than the model's default (Q4_K_M): a Q8_0 that
    only fits half on the GPU, or on the CPU alone, runs at half the speed for a gain the
    R1 evaluations do not show. ``speed_off_gpu=False`` is the plain rule."""
    plans = _quant_plans(model, hw)
    default_ctx = _default_ctx_of(model)
    for quant, chosen in plans:
        if chosen.verdict == "gpu" and chosen.n_ctx >= default_ctx:
            return quant
    candidates = _off_gpu_quants(model, plans) if speed_off_gpu else plans
    candidates = sorted(candidates, key=lambda qp: precision_rank(qp[0].quant))
    return next((q for q, p in candidates if p.verdict != "too_big"), None)


def _default_ctx_of(model: ModelEntry) -> int:
    return min(DEFAULT_CTX, model.arch.context_length) if model.arch else DEFAULT_CTX


@dataclass(frozen=True, slots=True)
class Recommendation:
    model: ModelEntry
    quant: QuantEntry
    plan: Plan
    reason: str


def recommend(models: Catalog | Iterable[ModelEntry], hw: HardwareProfile) -> Recommendation | None:
    """The R1 distill (family ``deepseek-r1-distill``, the ``r1:<size>`` models) to suggest.

    "Usable" means a context of at least 8,192 tokens (R1 traces run 2k-8k tokens), and
    on the CPU at most 8B parameters (every token reads all the weights from RAM; 8B at
    Q4_K_M, ~5 GB, is about the most a CPU turns into a few tokens a second). In order:

    1. the largest distill with a quant that runs fully on the GPU at a usable context
       (:func:`best_quant`'s pick when it runs there at the default context, else the
       most precise quant that runs there at a usable one);
    2. the largest distill of at most 8B that fits at a usable context, in its default
       quant, else a smaller quant;
    3. the same at any context the planner allows (down to 4,096).

    None when not even that fits.
    """
    distills = [m for m in models if m.family == R1_FAMILY and m.arch is not None]
    distills.sort(key=lambda m: -(params_billions(m) or 0.0))
    small = [m for m in distills if (params_billions(m) or math.inf) <= CPU_USABLE_PARAMS_B]
    return (
        _pick(distills, hw, _on_gpu, "the largest distill that runs on the GPU")
        or _pick(small, hw, _usable_off_gpu, _CPU_REASON)
        or _pick(small, hw, _any_off_gpu, _CPU_REASON + " (with a reduced context)")
    )


USABLE_CTX = 8_192
_CPU_REASON = f"the largest distill of at most {CPU_USABLE_PARAMS_B:g}B that fits"
_Chooser = Callable[[ModelEntry, list[tuple[QuantEntry, Plan]]], tuple[QuantEntry, Plan] | None]


def _pick(
    models: list[ModelEntry], hw: HardwareProfile, choose: _Chooser, reason: str
) -> Recommendation | None:
    for model in models:
        chosen = choose(model, _quant_plans(model, hw))
        if chosen is not None:
            return Recommendation(model, chosen[0], chosen[1], reason)
    return None


def _usable(model: ModelEntry) -> int:
    return min(USABLE_CTX, _default_ctx_of(model))


def _on_gpu(
    model: ModelEntry, plans: list[tuple[QuantEntry, Plan]]
) -> tuple[QuantEntry, Plan] | None:
    on_gpu = [(q, p) for q, p in plans if p.verdict == "gpu"]
    full_ctx = [(q, p) for q, p in on_gpu if p.n_ctx >= _default_ctx_of(model)]  # best_quant's
    usable = [(q, p) for q, p in on_gpu if p.n_ctx >= _usable(model)]
    best = full_ctx or usable
    return best[0] if best else None


def _usable_off_gpu(
    model: ModelEntry, plans: list[tuple[QuantEntry, Plan]]
) -> tuple[QuantEntry, Plan] | None:
    fits = [(q, p) for q, p in _off_gpu_quants(model, plans) if p.verdict != "too_big"]
    ok = [(q, p) for q, p in fits if p.n_ctx >= _usable(model)]
    return ok[0] if ok else None


def _any_off_gpu(
    model: ModelEntry, plans: list[tuple[QuantEntry, Plan]]
) -> tuple[QuantEntry, Plan] | None:
    fits = [(q, p) for q, p in _off_gpu_quants(model, plans) if p.verdict != "too_big"]
    return fits[0] if fits else None


# ========================================================================= load memory


def model_key(name: str, size: int, sha256: str | None = None) -> str:
    """Identifies a model file: its sha256 when known, else its name and size."""
    return f"sha256:{sha256.lower()}" if sha256 else f"{name}:{size}"


class LoadMemory:
    """Remembers, per model file and machine, the load settings that worked.

    A small JSON file (the caller picks the path, e.g. ``<data dir>/load_settings.json``),
    rewritten atomically (temporary file, then ``os.replace``). A missing or unreadable
    file is an empty memory: it is a cache, never a reason to fail.
    """

    VERSION = 1
    MAX_ENTRIES = 256

    def __init__(self, path: Path) -> None:
        self.path = path

    def recall(self, model: str, fingerprint: str) -> WorkingSettings | None:
        entry = self._entries().get(self._key(model, fingerprint))
        if not isinstance(entry, dict):
            return None
        try:
            return WorkingSettings(
                n_gpu_layers=int(entry["n_gpu_layers"]),
                n_ctx=int(entry["n_ctx"]),
                use_mmap=bool(entry.get("use_mmap", True)),
                after_oom=bool(entry.get("after_oom", False)),
            )
        except (TypeError, KeyError, ValueError, AttributeError):
            return None

    def remember(self, model: str, fingerprint: str, settings: WorkingSettings) -> None:
        entries = self._entries()
        entries[self._key(model, fingerprint)] = {
            "n_gpu_layers": settings.n_gpu_layers,
            "n_ctx": settings.n_ctx,
            "use_mmap": settings.use_mmap,
            "after_oom": settings.after_oom,
            "saved_at": time.time(),
        }
        self._write(_newest(entries, self.MAX_ENTRIES))

    def forget(self, model: str, fingerprint: str) -> None:
        entries = self._entries()
        if entries.pop(self._key(model, fingerprint), None) is not None:
            self._write(entries)

    @staticmethod
    def _key(model: str, fingerprint: str) -> str:
        return f"{model}|{fingerprint}"

    def _entries(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return dict(entries) if isinstance(entries, dict) else {}

    def _write(self, entries: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": self.VERSION, "entries": entries}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".load_settings-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _newest(entries: dict[str, Any], limit: int) -> dict[str, Any]:
    if len(entries) <= limit:
        return entries
    ordered = sorted(entries.items(), key=lambda kv: _saved_at(kv[1]), reverse=True)
    return dict(ordered[:limit])


def _saved_at(entry: Any) -> float:
    try:
        return float(entry.get("saved_at", 0.0))
    except (AttributeError, TypeError, ValueError):
        return 0.0


# ============================================================================ rendering


def gib(n: int | float) -> str:
    """Bytes as ``"4.4 GiB"`` (``"512 MiB"`` below one GiB)."""
    if abs(n) < GiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n / GiB:.1f} GiB"


_MARKS = {"error": "ERROR", "warning": "WARN ", "info": "INFO ", "ok": "OK   "}


def render_doctor(hw: HardwareProfile, findings: Sequence[Finding] | None = None) -> str:
    """The ``ponder doctor`` report as plain text (the caller prints it)."""
    found = diagnose(hw) if findings is None else findings
    lines = ["Hardware", *_profile_lines(hw), "", "Findings"]
    for finding in found:
        lines.append(f"  {_MARKS[finding.severity]} {finding.message}")
        for i, line in enumerate((finding.fix or "").splitlines()):
            lines.append(f"        {'fix: ' if i == 0 else ''}{line}")
    return "\n".join(lines)


def _profile_lines(hw: HardwareProfile) -> list[str]:
    system = f"{hw.system} {hw.machine}" + (" (under Rosetta 2)" if hw.rosetta else "")
    cores = (
        f"{hw.performance_cores} performance cores ({hw.physical_cores} physical, "
        f"{hw.logical_cores} logical)"
    )
    lines = [
        f"  system      {system}",
        f"  CPU         {hw.cpu_model}; {cores}",
        f"  SIMD        {', '.join(hw.simd) or 'unknown'}",
        f"  RAM         {gib(hw.ram_available)} free of {gib(hw.ram_total)}",
    ]
    devices = [_device_line(d) for d in hw.devices] or [hw.devices_error or "none"]
    lines += _labelled("llama.cpp", devices)
    lines += _labelled("OS GPUs", [_os_gpu_line(g) for g in hw.os_gpus] or ["none found"])
    if hw.notes:
        lines += _labelled("notes", list(hw.notes))
    return lines


def _labelled(label: str, items: list[str]) -> list[str]:
    return [f"  {label if i == 0 else '':<11} {item}" for i, item in enumerate(items)]


def _device_line(d: BackendDevice) -> str:
    has_memory = d.kind in ("gpu", "igpu") and d.total_bytes > 0
    memory = f", {gib(d.free_bytes)} free of {gib(d.total_bytes)}" if has_memory else ""
    return f"{d.name} ({d.kind}) {d.description}{memory}"


def _os_gpu_line(g: OsGpu) -> str:
    parts = [g.name]
    if g.total_bytes:
        parts.append(gib(g.total_bytes) + (" shared" if g.vendor == "apple" else ""))
    if g.free_bytes is not None:
        parts.append(f"{gib(g.free_bytes)} free")
    if g.driver:
        parts.append(f"driver {g.driver}")
    return ", ".join(parts) + f" (from {g.source})"


FIT_HEADER = ("MODEL", "QUANT", "SIZE", "NEEDS", "VERDICT", "CONTEXT", "GPU LAYERS")


def fit_cells(row: FitRow) -> tuple[str, ...]:
    """One fit-table row as display strings, in :data:`FIT_HEADER` order."""
    p = row.plan
    runs = p.verdict != "too_big"
    return (
        row.model.short_name,
        row.quant.quant,
        gib(row.quant.size_bytes),
        gib(row.need_bytes),
        p.verdict.replace("_", " "),
        f"{p.n_ctx:,}" if runs else "-",
        f"{p.n_gpu_layers}/{p.n_layers_total}" if runs and p.estimate.gpus else "-",
    )


def render_fit_table(rows: Sequence[FitRow]) -> str:
    """The fit table as aligned plain text, header first."""
    table = [FIT_HEADER, *(fit_cells(row) for row in rows)]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(FIT_HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in table]
    return "\n".join(line.rstrip() for line in lines)


def render_plan(p: Plan) -> str:
    """The plan for ``--verbose``: settings, memory per device, and why."""
    head = (
        f"plan: {p.verdict.replace('_', ' ')}, {p.n_gpu_layers}/{p.n_layers_total} layers on "
        f"GPU, context {p.n_ctx:,}, {p.n_threads} threads, batch {p.n_batch}, "
        f"flash attention {'on' if p.flash_attn else 'off'}, KV {p.kv_type}, "
        f"mmap {'on' if p.use_mmap else 'off'}"
    )
    lines = [head] + [f"  {_use_line(d)}" for d in p.estimate.devices]
    lines += [f"  note: {n}" for n in p.notes] + [f"  warning: {w}" for w in p.warnings]
    return "\n".join(lines)


def _use_line(d: DeviceUse) -> str:
    return (
        f"{d.device:<8} weights {gib(d.weights)} + KV {gib(d.kv)} + compute {gib(d.compute)} "
        f"+ margin {gib(d.margin)} = {gib(d.need)} of {gib(d.budget)} free"
        + (" (shared RAM)" if d.unified else "")
    )
