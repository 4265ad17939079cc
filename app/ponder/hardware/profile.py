"""What Ponder knows about a machine: the frozen :class:`HardwareProfile`.

Plain data, shared by the rest of :mod:`ponder.hardware`: CPU, cores, SIMD flags, RAM and
how fast it reads, the devices the installed llama.cpp can use (as ggml's backend registry
lists them) and the GPUs the operating system sees. :mod:`ponder.hardware.probes` fills it
in; the doctor, the planner and the fit table only read it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Protocol

from ponder.units import GiB


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
    # RAM read bytes/s with performance_cores threads (ponder.hardware.bandwidth); None: not
    # measured. Left out of the fingerprint, which keys it.
    memory_bandwidth: float | None = None

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
