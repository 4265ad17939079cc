"""The llama-cpp-python pin and backend table (ponder.backends), the backend chosen for each
recorded machine, and `ponder setup --dry-run` / `ponder doctor --json` on those machines.

`ponder setup` runs in-process over a session whose machine is a recording
(tests/support/machines.py), so each kind of GPU machine is checked here without one.
Nothing is installed: the real install and rollback are tests/e2e/test_packaging_setup.py.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from ponder import backends, hardware
from ponder.catalog import load_catalog
from ponder.cli import main
from ponder.config import load_settings
from ponder.history import History
from ponder.paths import default_paths
from ponder.session import Session
from support.machines import machine

PIN = backends.LLAMA_CPP_PIN

# machine -> (backend, wheel index, whether the installed build already is it)
EXPECTED = {
    "cpu_build_with_rtx3060": ("cuda", "cu124", False),  # driver 550.90.07
    "rtx4060_laptop": ("cuda", "cu124", True),
    "dual_rtx3090": ("cuda", "cu122", True),  # driver 535.183
    "rtx4090_desktop": ("cuda", "cu125", True),  # Windows, driver 560.94
    "apple_m2_16gb": ("metal", "metal", True),
    "rx7900xtx_rocm": ("rocm", "rocm72", True),
    "cpu_laptop_8gb": ("cpu", "cpu", True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_backend_chosen_for_each_recorded_machine(name: str) -> None:
    choice = hardware.choose_backend(machine(name))
    assert (choice.backend.name, choice.variant, choice.current) == EXPECTED[name]


def _cpu_only(name: str) -> hardware.HardwareProfile:
    import dataclasses

    hw = machine(name)
    cpu = tuple(d for d in hw.devices if d.kind == "cpu")
    return dataclasses.replace(hw, devices=cpu, build_backends=())


@pytest.mark.parametrize(
    ("name", "backend", "variant"),
    [
        ("rtx4060_laptop", "cuda", "cu124"),
        ("rx7900xtx_rocm", "rocm", "rocm72"),
        ("apple_m2_16gb", "metal", "metal"),
        ("dual_rtx3090", "cuda", "cu122"),
    ],
)
def test_a_cpu_only_build_on_a_gpu_machine_needs_the_gpu_build(
    name: str, backend: str, variant: str
) -> None:
    choice = hardware.choose_backend(_cpu_only(name))
    assert choice.installed == "cpu" and choice.needed
    assert (choice.backend.name, choice.variant) == (backend, variant)


def test_asking_for_a_backend_wins_and_a_build_that_cannot_load_is_none() -> None:
    import dataclasses

    choice = hardware.choose_backend(machine("rtx4060_laptop"), "vulkan")
    assert choice.backend.name == "vulkan" and choice.needed and choice.installed == "cuda"
    broken = dataclasses.replace(machine("rtx4060_laptop"), devices=(), devices_error="OSError")
    assert hardware.choose_backend(broken).installed == "none"
    with pytest.raises(ValueError):
        hardware.choose_backend(machine("rtx4060_laptop"), "opencl")


def test_every_command_pins_the_version_and_forbids_a_source_build() -> None:
    for b in backends.BACKENDS:
        for variant in b.variants:
            pip = backends.pip_install(variant)
            assert f"llama-cpp-python=={PIN}" in pip and "--only-binary llama-cpp-python" in pip
            assert f"--extra-index-url {backends.WHEEL_INDEX}/{variant} " in pip
            uv = backends.uv_tool_install(variant)
            assert (
                f'"llama-cpp-python=={PIN}"' in uv and "--no-build-package llama-cpp-python" in uv
            )
    local = backends.pip_install("cpu", find_links="/some dir")
    assert "--no-index --find-links '/some dir'" in local and "abetlen" not in local


def test_the_pin_satisfies_the_projects_own_requirement() -> None:
    import tomllib

    from packaging.requirements import Requirement

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    [req] = [
        Requirement(r)
        for r in pyproject["project"]["dependencies"]
        if r.startswith("llama-cpp-python")
    ]
    assert req.specifier.contains(PIN)


@pytest.mark.parametrize(
    ("driver", "system", "blackwell", "variant"),
    [
        ("580.65.06", "Linux", True, "cu130"),
        ("575.51.03", "Linux", True, None),
        ("575.51.03", "Linux", False, "cu125"),
        ("530.30.02", "Linux", False, "cu121"),
        ("530.30.01", "Linux", False, None),
        ("551.61", "Windows", False, "cu124"),
        ("", "Linux", False, None),
    ],
)
def test_cuda_variant_by_driver(driver: str, system: str, blackwell: bool, variant: str) -> None:
    assert backends.cuda_variant(driver, system, blackwell) == variant


# ----------------------------------------------------------------- the commands, recorded


def _run(name: str, *args: str, hw: hardware.HardwareProfile | None = None) -> tuple[int, str, str]:
    paths = default_paths()

    def factory() -> Session:
        return Session(
            settings=load_settings(paths),
            paths=paths,
            catalog=load_catalog(),
            history=History.open(paths.history_db),
            hardware_profile=hw or machine(name),
        )

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = out, err, io.StringIO("")
    try:
        code = main(list(args), session_factory=factory)
    finally:
        sys.stdout, sys.stderr, sys.stdin = old
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("name", "label", "variant"),
    [
        ("rtx4060_laptop", "CUDA", "cu124"),
        ("rx7900xtx_rocm", "ROCm", "rocm72"),
        ("apple_m2_16gb", "Metal", "metal"),
    ],
)
def test_setup_dry_run_on_a_cpu_only_build_prints_the_safe_command_for_this_gpu(
    name: str, label: str, variant: str
) -> None:
    code, out, err = _run(name, "setup", "--dry-run", hw=_cpu_only(name))
    assert code == 0, err
    assert f"this machine wants the {label} build" in out
    assert sys.prefix in out  # the environment it would change, named
    assert f"--extra-index-url {backends.WHEEL_INDEX}/{variant} " in out
    assert f"llama-cpp-python=={PIN}" in out and "--only-binary llama-cpp-python" in out
    assert "dry run: nothing installed" in out and "dry run: not downloading" in out


def test_setup_on_a_machine_whose_build_is_right_installs_nothing() -> None:
    code, out, err = _run("rtx4060_laptop", "setup", "--dry-run")
    assert code == 0, err
    assert "the installed CUDA build is the right one" in out and "pip" not in out


def test_setup_without_a_prebuilt_wheel_gives_the_source_build() -> None:
    import dataclasses

    hw = _cpu_only("cpu_build_with_rtx3060")
    gpu = dataclasses.replace(hw.os_gpus[0], name="NVIDIA GeForce RTX 5090", driver="575.51.03")
    code, _out, err = _run("x", "setup", "--dry-run", hw=dataclasses.replace(hw, os_gpus=(gpu,)))
    assert code == 0, err
    assert "no prebuilt CUDA wheel fits" in err
    assert 'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir ' in err


def test_setup_asks_before_installing_and_refuses_without_a_terminal() -> None:
    code, _out, err = _run("x", "setup", hw=_cpu_only("rtx4060_laptop"))
    assert code == 2
    assert "not installing the CUDA build without asking" in err and "--yes" in err


def test_setup_refuses_under_rosetta_with_the_fix() -> None:
    code, _, err = _run("apple_m1_rosetta", "setup", "--dry-run")
    assert code == 1 and "Rosetta" in err and "arm64 Python" in err
    assert len(err.strip().splitlines()) == 1 or "Traceback" not in err


def test_doctor_json_has_the_machine_backend_devices_problems_and_fixes() -> None:
    code, out, err = _run("x", "doctor", "--json", hw=machine("cpu_build_with_rtx3060"))
    assert code == 0, err
    data = json.loads(out)
    assert data["machine"]["system"] == "Linux" and data["llama_cpp"]["backend"] == "cpu"
    assert data["llama_cpp"]["pin"] == PIN
    assert [d["name"] for d in data["llama_cpp"]["devices"]] == ["CPU"]
    assert data["os_gpus"][0]["name"] == "NVIDIA GeForce RTX 3060"
    wanted = data["recommended_backend"]
    assert (wanted["backend"], wanted["variant"], wanted["installed"]) == ("cuda", "cu124", False)
    assert wanted["pip"] == backends.pip_install("cu124")
    [problem] = data["problems"]
    assert (
        "CPU-only build" in problem["message"] and backends.pip_install("cu124") in problem["fix"]
    )
