"""Which llama.cpp backend this machine wants, and which one the installed build is.

``ponder setup`` and ``ponder doctor`` both need the answer, from the same probed
:class:`~ponder.hardware.profile.HardwareProfile`: Apple Silicon wants Metal, an NVIDIA
card with a driver wants the newest CUDA wheel that driver runs, an AMD card ROCm (on
Linux), another discrete GPU Vulkan, and everything else the CPU build. The backends and
their wheel indexes come from :mod:`ponder.backends`, the one table of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ponder.backends import BACKEND_NAMES, Backend, backend, cuda_variant
from ponder.hardware.os_probes import MIN_USEFUL_GPU
from ponder.hardware.profile import HardwareProfile, OsGpu

BLACKWELL = re.compile(r"RTX 50\d0|RTX PRO \d+ Blackwell|\bB[12]00\b|GB10", re.IGNORECASE)
BACKEND_CHOICES = ("auto", *BACKEND_NAMES)


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """The backend to install here, its wheel index, and whether the build already is it."""

    backend: Backend
    variant: str | None  # the wheel index ("cu124"); None: no prebuilt wheel fits
    reason: str  # "NVIDIA GeForce RTX 3060 with driver 550.90.07"
    installed: str  # the installed build's backend name, "none" when it cannot load
    current: bool  # the installed build already is ``backend`` and finds its device

    @property
    def needed(self) -> bool:
        return not self.current

    @property
    def no_wheel_reason(self) -> str:
        """Why :attr:`variant` is None (empty when it is not)."""
        if self.variant is not None:
            return ""
        if self.backend.name == "cuda":
            return "it needs an NVIDIA driver that nvidia-smi reports, 530.30 or newer"
        return f"its wheels run on {self.backend.platforms} only"


def installed_backend(hw: HardwareProfile) -> str:
    """The backend the installed llama.cpp was built for: ``cuda`` … ``cpu``, or ``none``."""
    if hw.devices_error is not None and hw.devices_error != "not probed":
        return "none"
    names = [d.name for d in hw.devices] + list(hw.build_backends)
    for each in (backend(name) for name in BACKEND_NAMES if name != "cpu"):
        if any(n.startswith(each.device_prefixes) or n == each.label for n in names):
            return each.name
    return "cpu"


def choose_backend(hw: HardwareProfile, requested: str = "auto") -> BackendChoice:
    """The backend for ``requested`` (``auto``: the best this machine can use)."""
    if requested not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {requested!r}")
    name, reason = _auto(hw) if requested == "auto" else (requested, "asked for")
    chosen = backend(name)
    have = installed_backend(hw)
    if requested == "auto" and have not in ("cpu", "none") and hw.offload_devices:
        # The build already offloads to a GPU: keep it (--backend switches on purpose).
        chosen, reason = backend(have), f"the installed build uses {hw.offload_devices[0].name}"
    return BackendChoice(
        backend=chosen,
        variant=_variant(hw, chosen),
        reason=reason,
        installed=have,
        current=have == chosen.name and _finds_device(hw, chosen),
    )


def _auto(hw: HardwareProfile) -> tuple[str, str]:
    if hw.apple_silicon and not hw.rosetta:
        return "metal", f"Apple Silicon ({hw.cpu_model})"
    useful = [g for g in hw.os_gpus if _worth_offloading(g)]
    for vendor, name in (("nvidia", "cuda"), ("amd", "rocm"), ("intel", "vulkan")):
        gpu = next((g for g in useful if g.vendor == vendor), None)
        if gpu is None:
            continue
        if name == "cuda" and not gpu.driver:
            continue  # no driver (found in sysfs only): nothing can use it yet
        if name == "rocm" and hw.system != "Linux":
            name = "vulkan"
        driver = f" with driver {gpu.driver}" if gpu.driver else ""
        return name, f"{gpu.name}{driver}"
    other = next((g for g in useful if g.vendor == "other"), None)
    if other is not None:
        return "vulkan", other.name
    if hw.offload_devices:
        return installed_backend(hw), f"the installed build uses {hw.offload_devices[0].name}"
    return "cpu", "no GPU that llama.cpp could use"


def _worth_offloading(gpu: OsGpu) -> bool:
    if gpu.vendor == "apple":
        return True
    return not gpu.integrated and (gpu.total_bytes is None or gpu.total_bytes >= MIN_USEFUL_GPU)


def _variant(hw: HardwareProfile, chosen: Backend) -> str | None:
    if chosen.name != "cuda":
        if chosen.name == "metal" and not hw.apple_silicon:
            return None
        return chosen.variants[0]
    nvidia = next((g for g in hw.os_gpus if g.vendor == "nvidia" and g.driver), None)
    if nvidia is None:
        return None
    return cuda_variant(nvidia.driver, hw.system, bool(BLACKWELL.search(nvidia.name)))


def _finds_device(hw: HardwareProfile, chosen: Backend) -> bool:
    if chosen.name == "cpu":
        return hw.devices_error is None and not hw.offload_devices
    return any(d.name.startswith(chosen.device_prefixes) for d in hw.offload_devices)
