"""Hardware probe, diagnosis, planner and fit table, replayed from recorded machines.

Each file in ``tests/support/hardware_profiles/`` is what the probes return on one kind of
machine: ``nvidia-smi`` CSV, sysfs files, ``sysctl`` values, the ggml device list and
``llama_print_system_info()``. The expected plans in ``PLAN_TABLE`` were worked out
from the formula in ``ponder.hardware.footprint``'s docstring with a separate scratch
calculation, not by running the planner; three are worked in full in
``test_worked_examples`` so a change to a constant shows up as a number.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ponder import hardware
from ponder.backends import LLAMA_CPP_PIN
from ponder.gguf_info import GGUFInfo
from ponder.hardware import GiB, HardwareProfile, MiB, ModelFacts, Overrides
from support.machines import (
    PROFILES,
    RecordedDevice,
    catalog,
    facts,
    machine,
    probes_from,
    recorded,
)

NVIDIA_SMI = " ".join(hardware.NVIDIA_SMI)


ALL_MACHINES = sorted(path.stem for path in PROFILES.glob("*.json"))

# ----------------------------------------------------------------------------- probe

# name: (system, cpu model, physical, logical, performance cores, offload devices,
#        OS GPUs as (vendor, name, integrated))
PROBE_TABLE: dict[str, tuple[Any, ...]] = {
    "cpu_laptop_8gb": (
        "Linux", "Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz", 4, 8, 4, (),
        (("intel", "Intel GPU 0x5917", True),),
    ),
    "rtx4060_laptop": (
        "Linux", "13th Gen Intel(R) Core(TM) i7-13700H", 14, 20, 6, ("CUDA0",),
        (("nvidia", "NVIDIA GeForce RTX 4060 Laptop GPU", False),
         ("intel", "Intel GPU 0xa7a0", True)),
    ),
    "rtx4090_desktop": (
        "Windows", "AMD Ryzen 9 7950X 16-Core Processor", 16, 32, 16, ("CUDA0",),
        (("nvidia", "NVIDIA GeForce RTX 4090", False),),
    ),
    "dual_rtx3090": (
        "Linux", "AMD Ryzen 9 5950X 16-Core Processor", 16, 32, 16, ("CUDA0", "CUDA1"),
        (("nvidia", "NVIDIA GeForce RTX 3090", False),
         ("nvidia", "NVIDIA GeForce RTX 3090", False)),
    ),
    "apple_m2_16gb": (
        "Darwin", "Apple M2", 8, 8, 4, ("MTL0",), (("apple", "Apple M2 GPU", True),),
    ),
    "rx7900xtx_rocm": (
        "Linux", "AMD Ryzen 7 7800X3D 8-Core Processor", 8, 16, 8, ("ROCm0",),
        (("amd", "AMD GPU 0x164e", True), ("amd", "AMD GPU 0x744c", False)),
    ),
    "cpu_build_with_rtx3060": (
        "Linux", "AMD Ryzen 5 5600X 6-Core Processor", 6, 12, 6, (),
        (("nvidia", "NVIDIA GeForce RTX 3060", False),),
    ),
    "apple_m1_rosetta": (
        "Darwin", "VirtualApple @ 2.50GHz processor", 8, 8, 4, (),
        (("apple", "Apple Silicon GPU", True),),
    ),
}  # fmt: skip


def test_every_recorded_machine_is_in_the_probe_table() -> None:
    assert sorted(PROBE_TABLE) == ALL_MACHINES


@pytest.mark.parametrize("name", sorted(PROBE_TABLE))
def test_probe_reads_the_recorded_machine(name: str) -> None:
    system, cpu, physical, logical, perf, offload, gpus = PROBE_TABLE[name]
    hw = machine(name)
    assert (hw.system, hw.cpu_model) == (system, cpu)
    assert (hw.physical_cores, hw.logical_cores, hw.performance_cores) == (physical, logical, perf)
    assert tuple(d.name for d in hw.offload_devices) == offload
    assert tuple((g.vendor, g.name, g.integrated) for g in hw.os_gpus) == gpus
    data = recorded(name)
    assert (hw.ram_total, hw.ram_available) == tuple(data["memory"])


def test_probe_details_from_nvidia_smi_and_sysfs() -> None:
    laptop = machine("rtx4060_laptop")
    nvidia = laptop.os_gpus[0]
    assert (nvidia.total_bytes, nvidia.free_bytes) == (8188 * MiB, 7805 * MiB)
    assert (nvidia.driver, nvidia.source) == ("550.120", "nvidia-smi")
    assert laptop.build_backends == ("CUDA",)
    assert {"AVX2", "AVX_VNNI", "FMA"} <= set(laptop.simd)
    assert "LLAMAFILE" in laptop.cpu_flags and "LLAMAFILE" not in laptop.simd
    assert "avx2" in laptop.host_cpu_flags
    radeon = machine("rx7900xtx_rocm").os_gpus[1]
    assert (radeon.total_bytes, radeon.free_bytes) == (25_753_026_560, 25_753_026_560 - 734_003_200)
    windows = machine("rtx4090_desktop").os_gpus[0]  # "\r\n" line ends
    assert (windows.driver, windows.total_bytes) == ("560.94", 24564 * MiB)


def test_probe_apple_facts() -> None:
    m2 = machine("apple_m2_16gb")
    assert (m2.apple_silicon, m2.rosetta, m2.gpu_wired_limit) == (True, False, None)
    assert {"NEON", "DOTPROD", "MATMUL_INT8"} <= set(m2.simd)
    assert m2.offload_devices[0].unified
    rosetta = machine("apple_m1_rosetta")
    assert (rosetta.apple_silicon, rosetta.rosetta, rosetta.machine) == (True, True, "x86_64")


def test_fingerprint_ignores_free_memory_but_not_the_gpus() -> None:
    hw = machine("rtx4060_laptop")
    assert hw.fingerprint == dataclasses.replace(hw, ram_available=1).fingerprint
    assert hw.fingerprint != dataclasses.replace(hw, devices=hw.devices[1:]).fingerprint
    assert len(hw.fingerprint) == 16


def test_probe_survives_every_source_missing() -> None:
    hw = hardware.probe(
        hardware.Probes(
            run_command=lambda argv: None,
            read_file=lambda path: None,
            list_dir=lambda path: [],
            sysctl=lambda key: None,
            memory=lambda: (8 * GiB, 4 * GiB),
            cpu_counts=lambda: (None, None),
            platform=lambda: ("Linux", "x86_64"),
            processor=lambda: "",
        )
    )
    assert hw.physical_cores >= 1 and hw.performance_cores >= 1
    assert hw.cpu_model == "unknown CPU"
    assert (hw.devices, hw.os_gpus, hw.cpu_flags) == ((), (), ())
    assert "llama.cpp devices: not probed" in hw.notes
    assert "nvidia-smi: not available" in hw.notes
    assert any("vulkaninfo" in note for note in hw.notes)


def _failing_probe() -> list[RecordedDevice]:
    raise OSError("libggml.so: cannot open shared object file")


def _failing_system_info() -> str:
    raise RuntimeError("no lib")


def _garbage(argv: Any) -> str:
    return "NVIDIA-SMI has failed because it couldn't communicate with the driver\n{oops"


def test_probe_survives_exceptions_and_garbage() -> None:
    data = recorded("cpu_build_with_rtx3060")
    probes = dataclasses.replace(
        probes_from(data),
        ggml_devices=_failing_probe,
        system_info=_failing_system_info,
        run_command=_garbage,
        list_dir=lambda path: [],
    )
    hw = hardware.probe(probes)
    assert hw.devices == () and hw.devices_error is not None
    assert "libggml.so" in hw.devices_error
    assert hw.os_gpus == ()
    assert "nvidia-smi: output not understood" in hw.notes
    assert "rocm-smi: output not understood" in hw.notes
    assert any(note.startswith("llama.cpp system info: RuntimeError") for note in hw.notes)
    error = hardware.diagnose(hw)[0]
    assert error.severity == "error" and "could not be loaded" in error.message
    assert error.fix == hardware.PIP_REINSTALL


def test_os_gpus_can_be_skipped() -> None:
    calls: list[str] = []

    def run(argv: Any) -> str | None:
        calls.append(argv[0])
        return None

    probes = dataclasses.replace(probes_from(recorded("rtx4060_laptop")), run_command=run)
    hw = hardware.probe(probes, os_gpus=False)
    assert hw.os_gpus == () and calls == []
    assert hw.offload_devices[0].name == "CUDA0"


def test_rocm_smi_and_vulkaninfo_fill_in_when_sysfs_is_silent() -> None:
    rocm = json.dumps(
        {
            "card0": {
                "VRAM Total Memory (B)": "25753026560",
                "VRAM Total Used Memory (B)": "1073741824",
            }
        }
    )
    vulkan = (
        "Devices:\n========\nGPU0:\n\tapiVersion = 1.3.274\n\tvendorID = 0x8086\n"
        "\tdeviceType = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU\n"
        "\tdeviceName = Intel(R) Arc(tm) A770 Graphics (DG2)\n"
        "GPU1:\n\tvendorID = 0x10005\n\tdeviceType = PHYSICAL_DEVICE_TYPE_CPU\n"
        "\tdeviceName = llvmpipe (LLVM 15.0.7, 256 bits)\n"
    )
    outputs = {"rocm-smi": rocm, "vulkaninfo": vulkan}
    base = probes_from(recorded("cpu_laptop_8gb"))
    amd = hardware.probe(
        dataclasses.replace(base, list_dir=lambda p: [], run_command=lambda a: outputs.get(a[0]))
    )
    assert [(g.vendor, g.total_bytes, g.free_bytes, g.source) for g in amd.os_gpus] == [
        ("amd", 25_753_026_560, 25_753_026_560 - GiB, "rocm-smi")
    ]
    arc = hardware.probe(
        dataclasses.replace(base, run_command=lambda a: vulkan if a[0] == "vulkaninfo" else None)
    )
    assert [(g.vendor, g.name, g.integrated) for g in arc.os_gpus] == [
        ("intel", "Intel(R) Arc(tm) A770 Graphics (DG2)", False)
    ]
    fix = hardware.diagnose(arc)[0].fix
    assert fix is not None and 'CMAKE_ARGS="-DGGML_VULKAN=on"' in fix and "whl/vulkan" in fix


def test_real_default_probes_degrade(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hardware._run_command(["ponder-no-such-tool-xyz"]) is None
    assert hardware._run_command([sys.executable, "-c", "raise SystemExit(3)"]) is None
    assert hardware._run_command([sys.executable, "-c", "print('hi')"]) == "hi\n"
    monkeypatch.setattr(hardware.os_probes, "COMMAND_TIMEOUT_S", 0.3)
    started = time.monotonic()
    assert hardware._run_command([sys.executable, "-c", "import time; time.sleep(5)"]) is None
    assert time.monotonic() - started < 3
    assert hardware._read_file("/no/such/file") is None
    assert hardware._list_dir("/no/such/dir") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 0 | LLAMAFILE = 1 | ",
            {"CPU": {"SSE3": "1", "AVX": "1", "AVX2": "1", "AVX512": "0", "LLAMAFILE": "1"}},
        ),
        (  # 2024 builds: no section names, everything is the CPU's
            "AVX = 1 | AVX_VNNI = 0 | AVX2 = 1 | AVX512 = 0 | FMA = 1 | NEON = 0 | ",
            {"CPU": {"AVX": "1", "AVX_VNNI": "0", "AVX2": "1", "AVX512": "0", "FMA": "1",
                     "NEON": "0"}},
        ),
        (
            "CUDA : ARCHS = 500,610,700,750,800 | USE_GRAPHS = 1 | CPU : AVX2 = 1 | ",
            {"CUDA": {"ARCHS": "500,610,700,750,800", "USE_GRAPHS": "1"}, "CPU": {"AVX2": "1"}},
        ),
        (
            "Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1 | ARM_FMA = 1 | SVE_CNT = 16 |",
            {"Metal": {"EMBED_LIBRARY": "1"},
             "CPU": {"NEON": "1", "ARM_FMA": "1", "SVE_CNT": "16"}},
        ),
        ("", {}),
        ("garbage | : = | ===", {}),
    ],
)  # fmt: skip
def test_parse_system_info(text: str, expected: dict[str, dict[str, str]]) -> None:
    assert hardware.parse_system_info(text) == expected


# ------------------------------------------------------------------------- diagnosis

CUDA_REBUILD = (
    'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python'
)


def _problems(hw: HardwareProfile) -> list[hardware.Finding]:
    return [f for f in hardware.diagnose(hw) if f.severity in ("error", "warning")]


def test_cpu_only_build_with_an_nvidia_gpu_prints_the_cuda_reinstall() -> None:
    [finding] = _problems(machine("cpu_build_with_rtx3060"))
    assert finding.severity == "warning"
    assert "CPU-only build" in finding.message and "NVIDIA GeForce RTX 3060" in finding.message
    assert finding.fix is not None
    assert CUDA_REBUILD in finding.fix
    wheel = "--extra-index-url https://abetlen.github.io/llama-cpp-python/whl/cu124"
    assert wheel in finding.fix  # driver 550.90.07 runs CUDA 12.4
    report = hardware.render_doctor(machine("cpu_build_with_rtx3060"))
    assert CUDA_REBUILD in report and "NVIDIA GeForce RTX 3060" in report


def _cpu_only(hw: HardwareProfile) -> HardwareProfile:
    cpu = tuple(d for d in hw.devices if d.kind == "cpu")
    return dataclasses.replace(hw, devices=cpu, build_backends=())


@pytest.mark.parametrize(
    ("name", "command", "wheel"),
    [
        ("rtx4090_desktop",
         '$env:CMAKE_ARGS = "-DGGML_CUDA=on"; pip install --force-reinstall --no-cache-dir '
         "llama-cpp-python", "whl/cu125"),  # driver 560.94 runs CUDA 12.5
        ("rx7900xtx_rocm",
         'CMAKE_ARGS="-DGGML_HIP=on" pip install --force-reinstall --no-cache-dir llama-cpp-python',
         "whl/rocm72"),
        ("apple_m2_16gb",
         'CMAKE_ARGS="-DGGML_METAL=on" pip install --force-reinstall --no-cache-dir '
         "llama-cpp-python", "whl/metal"),
        ("dual_rtx3090", CUDA_REBUILD, "whl/cu122"),  # driver 535.183 predates CUDA 12.4
    ],
)  # fmt: skip
def test_cpu_only_build_fix_matches_the_platform(name: str, command: str, wheel: str) -> None:
    [finding] = _problems(_cpu_only(machine(name)))
    assert finding.fix is not None
    assert command in finding.fix and wheel in finding.fix


def test_small_integrated_gpus_are_not_worth_a_rebuild() -> None:
    assert _problems(machine("cpu_laptop_8gb")) == []  # Intel UHD 620 only
    [radeon] = _problems(_cpu_only(machine("rx7900xtx_rocm")))  # not the 512 MiB APU
    assert "AMD GPU 0x744c" in radeon.message


def test_rosetta_is_an_error_with_the_arm64_fix_and_nothing_else() -> None:
    findings = _problems(machine("apple_m1_rosetta"))
    assert [f.severity for f in findings] == ["error"]
    assert "Rosetta" in findings[0].message
    assert findings[0].fix is not None and "arm64 Python" in findings[0].fix


def test_missing_avx2() -> None:
    base = machine("cpu_laptop_8gb")
    no_avx2 = tuple(f for f in base.cpu_flags if f != "AVX2")
    poor_build = dataclasses.replace(base, cpu_flags=no_avx2)
    [finding] = _problems(poor_build)
    assert "built without AVX2" in finding.message
    assert finding.fix == (
        'CMAKE_ARGS="-DGGML_NATIVE=on" pip install --force-reinstall --no-cache-dir '
        f"llama-cpp-python=={LLAMA_CPP_PIN}"
    )
    old_cpu = dataclasses.replace(poor_build, host_cpu_flags=("avx",))
    [finding] = _problems(old_cpu)
    assert "has no AVX2" in finding.message
    assert _problems(dataclasses.replace(machine("apple_m2_16gb"), cpu_flags=("NEON",))) == []


def test_low_ram() -> None:
    low = dataclasses.replace(machine("cpu_laptop_8gb"), ram_available=int(1.5 * GiB))
    [finding] = _problems(low)
    assert finding.message == "only 1.5 GiB of 7.7 GiB RAM is free"


def test_healthy_gpu_machine_and_device_problems() -> None:
    findings = hardware.diagnose(machine("rtx4090_desktop"))
    assert [f.severity for f in findings] == ["ok", "ok"]
    assert findings[0].message.startswith("llama.cpp offloads to CUDA0 (NVIDIA GeForce RTX 4090")
    dual = machine("dual_rtx3090")
    [missing] = _problems(dataclasses.replace(dual, devices=dual.devices[1:]))
    assert "uses 1 of the 2 GPUs" in missing.message
    [hidden] = _problems(dataclasses.replace(dual, devices=dual.devices[2:]))  # CUDA build, no GPU
    assert "built with CUDA but finds no GPU" in hidden.message
    vulkan_on_nvidia = dataclasses.replace(
        dual.devices[0], name="Vulkan0", description="NVIDIA GeForce RTX 3090"
    )
    info = hardware.diagnose(dataclasses.replace(dual, devices=(vulkan_on_nvidia, dual.devices[2])))
    assert any("through Vulkan" in f.message and f.severity == "info" for f in info)


@pytest.mark.parametrize(
    ("driver", "system", "name", "wheel"),
    [
        ("550.54.14", "Linux", "NVIDIA GeForce RTX 3060", "cu124"),
        ("550.54.13", "Linux", "NVIDIA GeForce RTX 3060", "cu123"),
        ("535.183.01", "Linux", "NVIDIA GeForce RTX 3090", "cu122"),
        ("531.14", "Windows", "NVIDIA GeForce RTX 3090", "cu121"),
        ("520.61.05", "Linux", "NVIDIA GeForce GTX 1080", None),  # no cu118 index any more
        ("555.42.02", "Linux", "NVIDIA GeForce RTX 4090", "cu125"),
        ("580.65.06", "Linux", "NVIDIA GeForce RTX 5090", "cu130"),  # Blackwell: CUDA 13
        ("470.82.01", "Linux", "NVIDIA GeForce GTX 1080", None),
        ("575.51.03", "Linux", "NVIDIA GeForce RTX 5090", None),  # Blackwell: build from source
        (None, "Linux", "NVIDIA GeForce RTX 3060", None),
    ],
)
def test_cuda_wheel_by_driver(
    driver: str | None, system: str, name: str, wheel: str | None
) -> None:
    assert hardware.cuda_wheel(driver, system, name) == wheel


def test_render_doctor_lists_the_machine() -> None:
    report = hardware.render_doctor(machine("apple_m2_16gb"))
    assert "Darwin arm64" in report
    assert "MTL0 (gpu) Apple M2, 10.7 GiB free of 10.7 GiB" in report
    assert "BLAS (accel) Accelerate" in report and "0 MiB" not in report
    assert "Apple M2 GPU, 16.0 GiB shared (from sysctl)" in report
    assert report.splitlines()[-1].strip() == "OK    no problems found"


# --------------------------------------------------------------------------- planner

M = "cpu_laptop_8gb"
# (machine, model@quant) -> (verdict, n_gpu_layers, n_ctx, use_mmap); layers count the
# output layer, as llama.cpp does (r1:7b has 28 blocks: 29 layers).
PLAN_TABLE: dict[tuple[str, str], tuple[str, int, int, bool]] = {
    ("cpu_laptop_8gb", "r1:1.5b@Q4_K_M"): ("cpu", 0, 16384, True),
    ("cpu_laptop_8gb", "r1:1.5b@Q8_0"): ("cpu", 0, 16384, True),
    ("cpu_laptop_8gb", "r1:7b@Q4_K_M"): ("cpu", 0, 4096, False),  # worked example 2
    ("cpu_laptop_8gb", "r1:7b@Q8_0"): ("too_big", 0, 4096, False),
    ("cpu_laptop_8gb", "r1:14b@Q4_K_M"): ("too_big", 0, 4096, False),
    ("cpu_laptop_8gb", "r1:32b@Q4_K_M"): ("too_big", 0, 4096, False),
    ("cpu_laptop_8gb", "r1-llama:70b@Q4_K_M"): ("too_big", 0, 4096, False),
    ("rtx4060_laptop", "r1:1.5b@Q4_K_M"): ("gpu", 29, 16384, True),
    ("rtx4060_laptop", "r1:1.5b@Q8_0"): ("gpu", 29, 16384, True),
    ("rtx4060_laptop", "r1:7b@Q4_K_M"): ("gpu", 29, 16384, True),
    ("rtx4060_laptop", "r1:7b@Q8_0"): ("partial", 22, 8192, True),  # worked example 1
    ("rtx4060_laptop", "r1:14b@Q4_K_M"): ("partial", 32, 4096, True),
    ("rtx4060_laptop", "r1:14b@Q8_0"): ("partial", 18, 4096, True),
    ("rtx4060_laptop", "r1:32b@Q4_K_M"): ("too_big", 65, 4096, False),
    ("rtx4060_laptop", "r1-llama:70b@Q4_K_M"): ("too_big", 81, 4096, False),
    ("rtx4090_desktop", "r1:1.5b@Q4_K_M"): ("gpu", 29, 16384, True),
    ("rtx4090_desktop", "r1:7b@Q4_K_M"): ("gpu", 29, 16384, True),
    ("rtx4090_desktop", "r1:7b@Q8_0"): ("gpu", 29, 16384, True),
    ("rtx4090_desktop", "r1:14b@Q4_K_M"): ("gpu", 49, 16384, True),
    ("rtx4090_desktop", "r1:14b@Q8_0"): ("gpu", 49, 16384, True),
    ("rtx4090_desktop", "r1:32b@Q4_K_M"): ("gpu", 65, 8192, True),
    ("rtx4090_desktop", "r1:32b@Q8_0"): ("partial", 40, 4096, True),
    ("rtx4090_desktop", "r1-llama:70b@Q4_K_M"): ("partial", 41, 4096, True),
    ("dual_rtx3090", "r1:1.5b@Q4_K_M"): ("gpu", 29, 16384, True),
    ("dual_rtx3090", "r1:7b@Q8_0"): ("gpu", 29, 16384, True),
    ("dual_rtx3090", "r1:14b@Q8_0"): ("gpu", 49, 16384, True),
    ("dual_rtx3090", "r1:32b@Q4_K_M"): ("gpu", 65, 16384, True),
    ("dual_rtx3090", "r1:32b@Q8_0"): ("gpu", 65, 16384, True),
    ("dual_rtx3090", "r1-llama:70b@Q4_K_M"): ("gpu", 81, 8192, True),
    ("apple_m2_16gb", "r1:1.5b@Q4_K_M"): ("gpu", 29, 16384, True),
    ("apple_m2_16gb", "r1:7b@Q4_K_M"): ("gpu", 29, 16384, True),
    ("apple_m2_16gb", "r1:7b@Q8_0"): ("gpu", 29, 16384, True),
    ("apple_m2_16gb", "r1:14b@Q4_K_M"): ("gpu", 49, 4096, True),  # worked example 3
    ("apple_m2_16gb", "r1:14b@Q8_0"): ("too_big", 49, 4096, False),
    ("apple_m2_16gb", "r1:32b@Q4_K_M"): ("too_big", 65, 4096, False),
    ("apple_m2_16gb", "r1-llama:70b@Q4_K_M"): ("too_big", 81, 4096, False),
    ("rx7900xtx_rocm", "r1:1.5b@Q4_K_M"): ("gpu", 29, 16384, True),
    ("rx7900xtx_rocm", "r1:7b@Q8_0"): ("gpu", 29, 16384, True),
    ("rx7900xtx_rocm", "r1:14b@Q4_K_M"): ("gpu", 49, 16384, True),
    ("rx7900xtx_rocm", "r1:14b@Q8_0"): ("gpu", 49, 16384, True),
    ("rx7900xtx_rocm", "r1:32b@Q4_K_M"): ("gpu", 65, 8192, True),
    ("rx7900xtx_rocm", "r1:32b@Q8_0"): ("partial", 42, 4096, True),
    ("rx7900xtx_rocm", "r1-llama:70b@Q4_K_M"): ("partial", 42, 4096, False),
    ("cpu_build_with_rtx3060", "r1:1.5b@Q4_K_M"): ("cpu", 0, 16384, True),
    ("cpu_build_with_rtx3060", "r1:7b@Q4_K_M"): ("cpu", 0, 16384, True),
    ("cpu_build_with_rtx3060", "r1:7b@Q8_0"): ("cpu", 0, 16384, True),
    ("cpu_build_with_rtx3060", "r1:14b@Q4_K_M"): ("cpu", 0, 16384, True),
    ("cpu_build_with_rtx3060", "r1:14b@Q8_0"): ("cpu", 0, 16384, True),
    ("cpu_build_with_rtx3060", "r1:32b@Q4_K_M"): ("cpu", 0, 16384, False),
    ("cpu_build_with_rtx3060", "r1:32b@Q8_0"): ("too_big", 0, 4096, False),
    ("cpu_build_with_rtx3060", "r1-llama:70b@Q4_K_M"): ("too_big", 0, 4096, False),
}


@pytest.mark.parametrize(("name", "ref"), sorted(PLAN_TABLE))
def test_plan_table(name: str, ref: str) -> None:
    verdict, layers, n_ctx, use_mmap = PLAN_TABLE[(name, ref)]
    hw = machine(name)
    got = hardware.plan(facts(ref), hw)
    assert (got.verdict, got.n_gpu_layers, got.n_ctx, got.use_mmap) == (
        verdict, layers, n_ctx, use_mmap,
    )  # fmt: skip
    assert got.fits == (verdict != "too_big")
    assert (got.n_threads, got.n_threads_batch) == (hw.performance_cores,) * 2
    assert (got.n_batch, got.flash_attn, got.kv_type, got.use_mlock) == (512, True, "f16", False)
    if verdict == "too_big":
        assert "needs about" in got.warnings[0] and "free" in got.warnings[0]


def test_worked_examples() -> None:
    """Three rows of PLAN_TABLE by hand, to the byte.

    1. RTX 4060 Laptop (7,488 MiB free), r1:7b Q8_0 (8.1e9 bytes). token_embd and
       output are 152,064 × 3,584 = 544,997,376 weights at 8.5 bits: 579,059,712 each;
       the 28 blocks share 6,941,880,576 (247,924,306 each, the first 8 one byte more).
       KV per token per block: 4 heads × (128 + 128) × 2 bytes = 2,048.
       22 layers (output + blocks 7..27) at 8,192 tokens:
         weights 579,059,712 + 21 × 247,924,306 + 1            = 5,785,470,139
         KV      21 × 2,048 × 8,192                             =   352,321,536
         compute logits 512 × 152,064 × 4 = 311,427,072
                 + activations 512 × 4 × 3 × 3,584 = 22,020,096
                 + one CPU layer passing through 247,924,307    =   581,371,475
         margin                                                 = 1,073,741,824
                                                    total       = 7,792,904,974 ≤ 7,851,737,088
       23 layers do not fit even at 4,096 tokens (7,873,057,119), and 22 layers at
       16,384 need 8,145,226,510: so 22 layers at 8,192.
    2. 8 GB laptop (6,012,954,214 bytes free), r1:7b Q4_K_M (4.68e9) on the CPU. With
       mmap the repacked Q4_K copies add 0.8 × 3,926,370,816 of block bytes, far over.
       Without: 4.68e9 + KV 28 × 2,048 × n_ctx + compute 333,447,168 + margin 536,870,912
       = 6,020,080,128 at 8,192 (7 MB too many) and 5,785,199,104 at 4,096.
    3. M2 16 GB, r1:14b Q4_K_M on Metal: GPU budget = min(free RAM 11,274,289,152,
       Metal's 11,453,251,584, 2/3 of 16 GiB). Weights 638,668,800 (output) + 7,913,386,880
       (48 blocks) + KV 48 × 4,096 × 4,096 + compute 342,884,352 + margin 1 GiB
       = 10,773,988,224 at 4,096; 11,579,294,592 at 8,192 does not fit.
    """
    q8 = hardware.estimate(facts("r1:7b@Q8_0"), machine("rtx4060_laptop"), 22, 8192, use_mmap=True)
    cuda = q8.gpus[0]
    assert (cuda.layers, cuda.weights, cuda.kv, cuda.compute) == (
        22, 5_785_470_139, 352_321_536, 581_371_475,
    )  # fmt: skip
    assert (cuda.need, cuda.budget) == (7_792_904_974, 7_851_737_088)
    laptop = machine("cpu_laptop_8gb")
    q4 = facts("r1:7b@Q4_K_M")
    assert (q4.embd_bytes, q4.output_bytes, sum(q4.layer_bytes)) == (
        306_561_024, 447_068_160, 3_926_370_816,
    )  # fmt: skip
    assert q4.kv_bytes_per_token == 57_344
    at_8k = hardware.estimate(q4, laptop, 0, 8192, use_mmap=False)
    at_4k = hardware.estimate(q4, laptop, 0, 4096, use_mmap=False)
    assert (at_8k.cpu.need, at_4k.cpu.need) == (6_020_080_128, 5_785_199_104)
    assert not at_8k.fits and at_4k.fits
    mmap = hardware.estimate(q4, laptop, 0, 4096, use_mmap=True)
    assert mmap.cpu.weights == 4_680_000_000 + int(0.8 * 3_926_370_816)
    m2 = hardware.estimate(
        facts("r1:14b@Q4_K_M"), machine("apple_m2_16gb"), 49, 4096, use_mmap=True
    )
    metal = m2.gpus[0]
    assert (metal.need, metal.budget, metal.unified) == (10_773_988_224, 11_274_289_152, True)
    assert m2.ram_need == 10_706_518_912 and m2.fits


def test_two_gpus_split_layers_by_free_memory() -> None:
    est = hardware.estimate(facts("r1-llama:70b@Q4_K_M"), machine("dual_rtx3090"), 81, 8192,
                            use_mmap=True)  # fmt: skip
    # 23,772 and 23,144 MiB free: the first 42 of 81 layers (il/81 < 0.5067) go to CUDA0
    assert [(d.device, d.layers) for d in est.gpus] == [("CUDA0", 42), ("CUDA1", 39)]
    assert est.gpus[1].compute > est.gpus[0].compute  # the logits sit with the output layer
    assert hardware.layer_owners(3, 2, [1, 1]) == [-1, -1, 0, 1]
    assert hardware.layer_owners(3, 0, [1, 1]) == [-1, -1, -1, -1]


def test_kv_of_offloaded_layers_goes_to_the_gpu() -> None:
    est = hardware.estimate(facts("r1:14b@Q4_K_M"), machine("rtx4060_laptop"), 32, 4096,
                            use_mmap=True)  # fmt: skip
    per_layer = 4096 * 4096
    assert (est.gpus[0].kv, est.cpu.kv) == (31 * per_layer, 17 * per_layer)
    assert est.gpus[0].layers + est.cpu.layers == 49


def test_unified_memory_budget() -> None:
    assert hardware.apple_gpu_limit(16 * GiB) == 16 * GiB * 2 // 3
    assert hardware.apple_gpu_limit(64 * GiB) == 48 * GiB
    m2 = machine("apple_m2_16gb")
    metal = m2.offload_devices[0]
    roomy = dataclasses.replace(m2, ram_available=15 * GiB)
    assert hardware.gpu_budget(metal, roomy) == 16 * GiB * 2 // 3  # below Metal's own figure
    wired = dataclasses.replace(roomy, gpu_wired_limit=8 * GiB)
    assert hardware.gpu_budget(metal, wired) == 8 * GiB


def test_overrides_win_and_warn() -> None:
    hw = machine("rtx4060_laptop")
    model = facts("r1:14b@Q4_K_M")
    forced = hardware.plan(model, hw, Overrides(n_gpu_layers=-1))
    assert (forced.verdict, forced.n_gpu_layers, forced.fits) == ("gpu", 49, False)
    assert forced.warnings and forced.warnings[0].startswith("will not fit: CUDA0 needs")
    few = hardware.plan(model, hw, Overrides(n_gpu_layers=10))
    assert (few.verdict, few.n_gpu_layers, few.n_ctx, few.fits) == ("partial", 10, 16384, True)
    none = hardware.plan(model, hw, Overrides(n_gpu_layers=0))
    assert (none.verdict, none.n_ctx) == ("cpu", 8192)  # 48 blocks' KV at 16k: 3.2 GB
    long = hardware.plan(facts("r1:7b@Q4_K_M"), machine("rtx4090_desktop"), Overrides(n_ctx=32768))
    assert (long.verdict, long.n_gpu_layers, long.n_ctx) == ("gpu", 29, 32768)
    capped = hardware.plan(facts("r1:1.5b@Q4_K_M"), hw, Overrides(n_ctx=1_000_000))
    assert capped.n_ctx == 131072 and "capped" in capped.notes[0]
    threads = hardware.plan(model, hw, Overrides(n_threads=3))
    assert (threads.n_threads, threads.n_threads_batch) == (3, 3)
    cpu_only = hardware.plan(model, machine("cpu_build_with_rtx3060"), Overrides(n_gpu_layers=20))
    assert cpu_only.n_gpu_layers == 0 and "--gpu-layers is ignored" in cpu_only.notes[0]


def test_plan_notes_say_why() -> None:
    partial = hardware.plan(facts("r1:14b@Q4_K_M"), machine("rtx4060_laptop"))
    assert partial.notes == (
        "context reduced from 16,384 to 4,096 tokens to fit",
        "32 of 49 layers fit on the GPU; the rest run on the CPU",
    )
    text = hardware.render_plan(partial)
    assert text.startswith("plan: partial, 32/49 layers on GPU, context 4,096, 6 threads")
    assert "CUDA0" in text and "CPU" in text and "of 7.3 GiB free" in text
    no_mmap = hardware.plan(facts("r1:7b@Q4_K_M"), machine(M))
    assert any("memory-mapping off" in note for note in no_mmap.notes)


def test_too_big_refuses_with_numbers() -> None:
    refused = hardware.plan(facts("r1:32b@Q4_K_M"), machine(M))
    assert (refused.verdict, refused.fits) == ("too_big", False)
    assert refused.warnings[0].startswith("r1:32b Q4_K_M needs about 20.")
    assert refused.warnings[0].endswith("this machine has 5.6 GiB of RAM free")


def test_step_down_after_out_of_memory() -> None:
    model, hw = facts("r1:7b@Q4_K_M"), machine("rtx4060_laptop")
    current: hardware.Plan | None = hardware.plan(model, hw)
    seen = []
    while current is not None:
        seen.append((current.verdict, current.n_gpu_layers, current.n_ctx, current.use_mmap))
        current = hardware.step_down(current, model, hw)
    layers = [29, 26, 23, 20, 17, 14, 11, 8, 5, 2]  # an eighth of 29 layers at a time
    assert seen == [
        *[("gpu" if g == 29 else "partial", g, 16384, True) for g in layers],
        ("cpu", 0, 16384, True),
        ("cpu", 0, 8192, True),
        ("cpu", 0, 4096, True),
        ("cpu", 0, 4096, False),
    ]


# ------------------------------------------------------------------- fit and recommend

# machine: (best quant of r1:7b, best quant of r1:14b, recommendation, the bigger choice).
# The recommendation is the largest distill that fits at 8,192 tokens or more and is
# predicted to decode at 8 tok/s or more (ponder.hardware.speed; tests/unit/test_speed.py
# works the formula); the bigger choice is the next larger one that fits, slower.
FIT_TABLE: dict[
    str, tuple[str | None, str | None, tuple[str, str, str, int] | None, str | None]
] = {
    # 18 GB/s of RAM: the 7B (2.9 tok/s) would take nine minutes a reply; the 1.5B, 11 tok/s
    "cpu_laptop_8gb": ("Q4_K_M", None, ("r1:1.5b", "Q4_K_M", "cpu", 16384), "r1:7b"),
    "rtx4060_laptop": ("Q5_K_M", "Q4_K_M", ("r1-llama:8b", "IQ4_XS", "gpu", 16384), "r1:14b"),
    "rtx4090_desktop": ("Q8_0", "Q8_0", ("r1:32b", "IQ4_XS", "gpu", 16384), "r1-llama:70b"),
    "dual_rtx3090": ("Q8_0", "Q8_0", ("r1-llama:70b", "IQ4_XS", "gpu", 16384), None),
    "apple_m2_16gb": ("Q8_0", "Q4_K_M", ("r1:14b", "IQ4_XS", "gpu", 8192), None),
    "rx7900xtx_rocm": ("Q8_0", "Q8_0", ("r1:32b", "IQ4_XS", "gpu", 16384), "r1-llama:70b"),
    # 38 GB/s over six cores: the 7B at 5.5 tok/s does not make 8
    "cpu_build_with_rtx3060": (
        "Q4_K_M", "Q4_K_M", ("r1:1.5b", "Q4_K_M", "cpu", 16384), "r1:7b",
    ),
    "apple_m1_rosetta": (None, None, ("r1:1.5b", "Q4_K_M", "cpu", 16384), None),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(FIT_TABLE))
def test_best_quant_and_recommendation(name: str) -> None:
    best_7b, best_14b, expected, bigger = FIT_TABLE[name]
    hw, cat = machine(name), catalog()
    for ref, best in (("r1:7b", best_7b), ("r1:14b", best_14b)):
        quant = hardware.best_quant(cat.resolve(ref).model, hw)
        assert (quant.quant if quant else None) == best, ref
    rec = hardware.recommend(cat, hw)
    got = rec and (rec.model.short_name, rec.quant.quant, rec.plan.verdict, rec.plan.n_ctx)
    assert got == expected
    assert rec is not None and rec.plan.speed is not None
    assert (rec.bigger.model.short_name if rec.bigger else None) == bigger
    if rec.bigger is not None:
        assert rec.bigger.plan.speed is not None
        assert rec.bigger.plan.speed.decode_tok_s < rec.plan.speed.decode_tok_s


def test_best_quant_plain_rule_prefers_precision_over_speed() -> None:
    model = catalog().resolve("r1:14b").model
    quant = hardware.best_quant(model, machine("rtx4060_laptop"), speed_off_gpu=False)
    assert quant is not None and quant.quant == "Q8_0"  # partial, 18 of 49 layers


def test_nothing_to_recommend_on_a_tiny_machine() -> None:
    tiny = dataclasses.replace(machine(M), ram_available=GiB)
    assert hardware.recommend(catalog(), tiny) is None


def test_fit_table_sorted_best_first() -> None:
    rows = hardware.fit_table(catalog(), machine("rtx4060_laptop"))
    assert len(rows) == sum(len(m.quants) for m in catalog())
    # usable here (8,192 tokens, 8 tok/s) first, then slow or short of context, then too big
    ranks = [0 if hardware.is_usable(r) else 1 if r.plan.fits else 2 for r in rows]
    assert ranks == sorted(ranks)
    assert hardware.fit_cells(rows[0]) == (
        "r1-llama:8b", "Q5_K_M", "5.3 GiB", "7.6 GiB", "gpu", "8,192", "33/33",
        "≈ 33 tok/s · about 1 min for a 1,500-token reply",
    )  # fmt: skip
    last = hardware.fit_cells(rows[-1])
    assert last[4:] == ("too big", "-", "-", "-")
    text = hardware.render_fit_table(rows)
    lines = text.splitlines()
    assert lines[0].split() == [
        "MODEL",
        "QUANT",
        "SIZE",
        "NEEDS",
        "VERDICT",
        "CONTEXT",
        "GPU",
        "LAYERS",
        "SPEED",
    ]
    assert len(lines) == len(rows) + 1
    assert (
        "r1:14b        Q4_K_M  8.4 GiB   14.0 GiB  partial  4,096    32/49       "
        "≈ 7.7 tok/s · about 3 min for a 1,500-token reply"
    ) in lines
    cpu_rows = hardware.fit_table(catalog(), machine(M))
    assert hardware.fit_cells(cpu_rows[0])[6] == "-"  # no GPU column values on a CPU machine


def test_models_without_architecture_are_left_out() -> None:
    entry = catalog().resolve("r1:7b").model.model_copy(update={"arch": None})
    assert ModelFacts.from_catalog(entry, entry.default) is None
    assert hardware.fit_table([entry], machine(M)) == []
    assert hardware.best_quant(entry, machine(M)) is None


def test_params_and_precision_rank() -> None:
    assert hardware.params_billions(catalog().resolve("r1:1.5b").model) == 1.5
    assert hardware.params_billions(catalog().resolve("qwen3:0.6b").model) == 0.6
    ranks = [hardware.precision_rank(q) for q in ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS")]
    assert ranks == [0, 1, 2, 3, 4] and hardware.precision_rank("Q2_K") == 5


# ----------------------------------------------------------------------- model facts


def _info(**changes: Any) -> GGUFInfo:
    base: dict[str, Any] = dict(
        path=Path("/models/x-Q4_K_M.gguf"), file_size=1_200_000_000, architecture="qwen2",
        name="X", file_type="Q4_K_M", n_layer=4, n_ctx_train=32768, n_embd=1000, n_head=8,
        n_head_kv=2, head_dim_k=128, head_dim_v=128, n_vocab=100_000, chat_template=None,
        bos_token=None, eos_token=None, add_bos_token=None, split_count=1,
        layer_bytes=(100, 100, 100, 100), other_bytes=138_281_250,
    )  # fmt: skip
    return GGUFInfo(**{**base, **changes})


def test_model_facts_from_gguf() -> None:
    # untied Q4_K_M: 1e8 weights at 4.5 + 6.5625 bits = 138,281,250 bytes, split by bits
    untied = ModelFacts.from_gguf(_info())
    assert (untied.embd_bytes, untied.output_bytes, untied.tied) == (56_250_000, 82_031_250, False)
    assert untied.weight_bytes == 400 + 138_281_250
    assert untied.kv_bytes_per_token == 4 * 2 * 256 * 2 and untied.exact
    # one matrix's worth (even at Q8_0) is a tied embedding: the GPU gets a copy
    tied = ModelFacts.from_gguf(_info(other_bytes=106_250_000))
    assert (tied.embd_bytes, tied.output_bytes, tied.tied) == (106_250_000, 106_250_000, True)
    assert tied.weight_bytes == 400 + 106_250_000
    exact = ModelFacts.from_gguf(_info(), output_bytes=80_000_000)
    assert (exact.embd_bytes, exact.output_bytes) == (58_281_250, 80_000_000)


def test_repack_share_by_quant_and_cpu() -> None:
    x86, arm = machine(M), machine("apple_m2_16gb")
    assert hardware.repack_share("Q4_K_M", x86) == 0.8
    assert hardware.repack_share("Q8_0", x86) == 0.0
    assert hardware.repack_share("Q8_0", arm) == 1.0  # MATMUL_INT8
    assert hardware.repack_share("Q6_K", arm) == 1.0
    assert hardware.repack_share("Q4_K_M", machine("apple_m1_rosetta")) == 0.0  # no AVX2


def test_tied_output_on_the_cpu_is_not_counted_twice() -> None:
    tied = ModelFacts.from_gguf(_info(other_bytes=106_250_000))
    cpu = hardware.estimate(tied, machine(M), 0, 4096, use_mmap=False)
    assert cpu.cpu.weights == tied.weight_bytes
    gpu = hardware.estimate(tied, machine("rtx4060_laptop"), 5, 4096, use_mmap=False)
    assert gpu.gpus[0].weights == 400 + 106_250_000 and gpu.cpu.weights == 106_250_000


# ----------------------------------------------------------------------- load memory


def test_load_memory_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "data" / "load_settings.json"
    memory = hardware.LoadMemory(path)
    key, fingerprint = hardware.model_key("r1-7b-Q4_K_M.gguf", 4_680_000_000), "abc123"
    assert key == "r1-7b-Q4_K_M.gguf:4680000000"
    assert hardware.model_key("x", 1, "ABCD") == "sha256:abcd"
    assert memory.recall(key, fingerprint) is None
    settings = hardware.WorkingSettings(20, 8192, use_mmap=True, after_oom=True)
    memory.remember(key, fingerprint, settings)
    assert hardware.LoadMemory(path).recall(key, fingerprint) == settings
    assert memory.recall(key, "other machine") is None
    assert json.loads(path.read_text())["version"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["load_settings.json"]  # no temp files
    memory.forget(key, fingerprint)
    assert memory.recall(key, fingerprint) is None


def test_load_memory_survives_a_corrupt_file_and_stays_small(tmp_path: Path) -> None:
    path = tmp_path / "load_settings.json"
    path.write_text("{not json")
    memory = hardware.LoadMemory(path)
    assert memory.recall("m", "f") is None
    path.write_text(json.dumps({"version": 1, "entries": {"m|f": {"n_ctx": "many"}}}))
    assert memory.recall("m", "f") is None
    for i in range(memory.MAX_ENTRIES + 5):
        memory.remember(f"m{i}", "f", hardware.WorkingSettings(0, 4096))
    entries = json.loads(path.read_text())["entries"]
    assert len(entries) == memory.MAX_ENTRIES
    assert memory.recall(f"m{memory.MAX_ENTRIES + 4}", "f") is not None


def test_remembered_settings_after_oom_cap_the_next_plan() -> None:
    model, hw = facts("r1:7b@Q4_K_M"), machine("rtx4060_laptop")
    after_oom = hardware.WorkingSettings(20, 8192, use_mmap=True, after_oom=True)
    capped = hardware.plan(model, hw, Overrides(remembered=after_oom))
    assert (capped.verdict, capped.n_gpu_layers, capped.n_ctx) == ("partial", 20, 8192)
    assert any("out-of-memory" in note for note in capped.notes)
    fine = dataclasses.replace(after_oom, after_oom=False)  # loaded first time: no cap
    assert hardware.plan(model, hw, Overrides(remembered=fine)).n_gpu_layers == 29
    stepped = hardware.step_down(hardware.plan(model, hw), model, hw)
    assert stepped is not None
    assert stepped.working_settings(after_oom=True) == hardware.WorkingSettings(
        26, 16384, True, True
    )


def test_repack_counts_the_tensor_types_llama_cpp_repacks(gemma_path: Path) -> None:
    """Gemma 3 270M's "Q4_K_M" file is mostly Q5_0: only its Q4_K layer tensors are
    repacked. llama.cpp logs `CPU_REPACK model buffer size = 12.66 MiB` for it on AVX2
    (bench/bench_memory.py); a share by quant name (0.8 of the layers) said 52 MiB."""
    from ponder import gguf_info
    from ponder.hardware.facts import model_repack_share

    info = gguf_info.inspect(gemma_path)
    model = ModelFacts.from_gguf(info)
    avx2 = machine("cpu_laptop_8gb")
    assert "AVX2" in avx2.cpu_flags
    repacked = sum(model.layer_bytes) * model_repack_share(model, avx2)
    assert round(repacked) == dict(info.layer_type_bytes)["Q4_K"] == 13_271_040
    plain = dataclasses.replace(avx2, cpu_flags=())
    assert model_repack_share(model, plain) == 0.0
