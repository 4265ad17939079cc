"""``ponder doctor``'s findings: what is wrong with this machine's setup, and the exact fix.

Each :class:`Finding` is a plain sentence over the probed
:class:`~ponder.hardware.profile.HardwareProfile`, with the command that fixes it where
there is one. The important one: the OS sees a GPU the llama.cpp build cannot use, i.e. a
CPU-only wheel (docs/architecture.md#device-discovery); its fix is ``ponder setup`` and the
safe install of the prebuilt wheel where one fits the GPU and its driver
(:mod:`ponder.backends`), else the rebuild for this platform's shell.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ponder import backends
from ponder.backends import WHEEL_INDEX as WHEEL_INDEX  # re-exported by ponder.hardware
from ponder.hardware.backend_choice import BLACKWELL, _worth_offloading
from ponder.hardware.profile import HardwareProfile, OsGpu
from ponder.units import GiB, gib

LOW_RAM = 4 * GiB

Severity = Literal["error", "warning", "info", "ok"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of ``ponder doctor``: what is wrong (or fine) and the exact fix."""

    severity: Severity
    message: str
    fix: str | None = None


PIP_REINSTALL = "pip install --force-reinstall --no-cache-dir llama-cpp-python"
# (vendor) -> (backend, prebuilt wheel index on Linux, on Windows); flags and indexes come
# from ponder.backends, the one table ponder setup and packaging/ use too.
_GPU_BUILDS = {
    "nvidia": ("cuda", None, None),  # the CUDA wheel depends on the driver
    "amd": ("rocm", "rocm72", "hip-radeon"),
    "apple": ("metal", "metal", "metal"),
    "intel": ("vulkan", "vulkan", "vulkan"),
    "other": ("vulkan", "vulkan", "vulkan"),
}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2, "ok": 3}


def reinstall_command(cmake_flag: str, system: str) -> str:
    """The one-line source rebuild with ``cmake_flag``, in the platform's shell syntax."""
    return backends.source_build(cmake_flag, system)


def cuda_wheel(driver: str | None, system: str, gpu_name: str = "") -> str | None:
    """The prebuilt CUDA wheel index (``cu124`` …) this driver can run, if any."""
    return backends.cuda_variant(driver, system, bool(BLACKWELL.search(gpu_name)))


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


def _one_per_vendor(gpus: Iterable[OsGpu]) -> list[OsGpu]:
    seen: dict[str, OsGpu] = {}
    for gpu in gpus:
        seen.setdefault(gpu.vendor, gpu)
    return list(seen.values())


def _cpu_only_build(hw: HardwareProfile, gpu: OsGpu) -> Finding:
    name, linux_wheel, windows_wheel = _GPU_BUILDS[gpu.vendor]
    chosen = backends.backend(name)
    size = f", {gib(gpu.total_bytes)}" if gpu.total_bytes and gpu.vendor != "apple" else ""
    wheel = _wheel_for(hw, gpu, linux_wheel, windows_wheel)
    fix = ""
    if wheel:
        fix = (
            f"`ponder setup --backend {name}` installs the prebuilt {chosen.label} wheel and "
            "checks that it offloads; by hand (never a silent CPU rebuild):\n"
            f"  {backends.pip_install(wheel)}\nor "
        )
    fix += f"rebuild it with {chosen.label}:\n  {reinstall_command(chosen.cmake_flag, hw.system)}"
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
        flag = backends.backend("cuda").cmake_flag
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
