"""The real probes on this machine: ggml's device registry through ctypes, the system info
string, and a plan for the real Gemma GGUF.

This runs on CI's CPU-only build of llama-cpp-python, so exactly one device (the CPU) is
expected; the GPU cases are covered by the recorded machines in test_hardware.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ponder import devices, gguf_info, hardware


def real_profile() -> hardware.HardwareProfile:
    probes = hardware.Probes(ggml_devices=devices.ggml_devices, system_info=devices.system_info)
    return hardware.probe(probes)


def test_ggml_registry_lists_the_cpu() -> None:
    found = devices.ggml_devices()
    cpus = [d for d in found if d.kind == "cpu"]
    assert len(cpus) == 1
    assert cpus[0].name == "CPU" and cpus[0].description
    assert cpus[0].total_bytes > 0
    assert all(d.kind in ("cpu", "gpu", "igpu", "accel", "meta") for d in found)
    assert devices.supports_gpu_offload() == any(d.kind in ("gpu", "igpu") for d in found)


def test_system_info_parses() -> None:
    sections = hardware.parse_system_info(devices.system_info())
    assert "CPU" in sections
    assert any(value == "1" for value in sections["CPU"].values())


def test_real_probe() -> None:
    hw = real_profile()
    assert hw.ram_total > 0 and 0 < hw.ram_available <= hw.ram_total
    assert hw.physical_cores >= 1 and hw.logical_cores >= hw.physical_cores
    assert 1 <= hw.performance_cores <= hw.physical_cores
    assert hw.devices_error is None and hw.devices[-1].kind == "cpu"
    assert hw.simd  # SIMD flags parsed from llama_print_system_info()
    assert hw.cpu_model and hw.cpu_model != "unknown CPU"
    report = hardware.render_doctor(hw)
    assert "CPU (cpu)" in report


def test_plan_for_the_real_gemma(gemma_path: Path) -> None:
    info = gguf_info.inspect(gemma_path)
    assert info.n_ctx_train == 32768
    model = hardware.ModelFacts.from_gguf(info)
    hw = real_profile()
    if hw.offload_devices:  # a GPU build: strip the GPUs so the CPU plan is tested
        hw = hardware.HardwareProfile(**{**_fields(hw), "devices": hw.devices[-1:]})
    plan = hardware.plan(model, hw)
    assert (plan.verdict, plan.n_gpu_layers, plan.n_ctx) == ("cpu", 0, 16384)
    assert plan.n_layers_total == info.n_layer + 1
    assert plan.n_threads == hw.performance_cores
    assert plan.fits and plan.estimate.total < hw.ram_available


def _fields(hw: hardware.HardwareProfile) -> dict[str, object]:
    return {name: getattr(hw, name) for name in hw.__dataclass_fields__}


def test_imports_stay_light() -> None:
    """hardware never loads llama.cpp; devices loads it only when asked."""
    code = (
        "import sys, ponder.hardware, ponder.devices; "
        "sys.exit(1 if 'llama_cpp' in sys.modules else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
