"""``ponder doctor --json``: the doctor's report as one JSON-ready object.

For scripts and bug reports: the machine, the installed llama.cpp build and its
devices, the GPUs the OS sees, the backend this machine wants (and the safe command that
installs it), and every finding with its fix. The keys are an API: add, never rename.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ponder import backends
from ponder.hardware.backend_choice import choose_backend
from ponder.hardware.diagnosis import Finding
from ponder.hardware.profile import HardwareProfile

SCHEMA = 1


def doctor_data(hw: HardwareProfile, findings: Sequence[Finding]) -> dict[str, Any]:
    """Everything ``ponder doctor`` knows, as plain JSON types."""
    choice = choose_backend(hw)
    install = backends.pip_install(choice.variant) if choice.variant else None
    return {
        "schema": SCHEMA,
        "machine": {
            "system": hw.system,
            "machine": hw.machine,
            "cpu": hw.cpu_model,
            "physical_cores": hw.physical_cores,
            "logical_cores": hw.logical_cores,
            "performance_cores": hw.performance_cores,
            "simd": list(hw.simd),
            "ram_total_bytes": hw.ram_total,
            "ram_available_bytes": hw.ram_available,
            "apple_silicon": hw.apple_silicon,
            "rosetta": hw.rosetta,
        },
        "llama_cpp": {
            "pin": backends.LLAMA_CPP_PIN,
            "backend": choice.installed,
            "build_backends": list(hw.build_backends),
            "devices": [asdict(d) for d in hw.devices],
            "offload_devices": [d.name for d in hw.offload_devices],
            "error": hw.devices_error,
        },
        "os_gpus": [asdict(g) for g in hw.os_gpus],
        "recommended_backend": {
            "backend": choice.backend.name,
            "variant": choice.variant,
            "reason": choice.reason,
            "installed": choice.current,
            "setup": f"ponder setup --backend {choice.backend.name}",
            "pip": install,
            "source_build": backends.source_build(choice.backend.cmake_flag, hw.system),
        },
        "problems": [
            {"severity": f.severity, "message": f.message, "fix": f.fix}
            for f in findings
            if f.severity in ("error", "warning")
        ],
        "findings": [
            {"severity": f.severity, "message": f.message, "fix": f.fix} for f in findings
        ],
        "notes": list(hw.notes),
    }
