"""The llama-cpp-python pin and the backends Ponder knows how to install: one source of truth.

GPU support is fixed when llama-cpp-python is installed, and PyPI only has its source
distribution, which builds for the CPU. Its prebuilt wheels live in one index per backend
variant (``https://abetlen.github.io/llama-cpp-python/whl/<variant>``). When the wanted
version is missing from an index, pip quietly builds the PyPI sdist for the CPU instead
(llama-cpp-python #1872), so every command made here pins the exact version and forbids a
source build (``--only-binary`` for pip, ``--no-build-package`` for uv).

``ponder doctor``, ``ponder setup``, ``packaging/backends.md`` and ``packaging/install.sh``
all use this table; ``tests/unit/test_backends.py`` keeps the two packaging files equal to
it. Plain data and string building only: nothing here imports llama.cpp or runs anything.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

# The version every command installs. Bumping it: check that each index below has it
# (packaging/README.md, "Bumping llama-cpp-python"), then rebuild the test wheel.
LLAMA_CPP_PIN = "0.3.36"
PACKAGE = "llama-cpp-python"
WHEEL_INDEX = "https://abetlen.github.io/llama-cpp-python/whl"
# Release builds are portable: a native build is tuned to (and may crash off) the builder.
PORTABLE_CMAKE = "-DGGML_NATIVE=OFF"


@dataclass(frozen=True, slots=True)
class Backend:
    """One way llama.cpp can run, and how to install a llama-cpp-python built for it."""

    name: str  # what --backend takes: "cuda"
    label: str  # what people call it: "CUDA"
    cmake_flag: str  # the source build's CMAKE_ARGS
    device_prefixes: tuple[str, ...]  # ggml device names this build registers ("CUDA0")
    variants: tuple[str, ...]  # its wheel indexes, newest first
    platforms: str  # where the prebuilt wheels run


@dataclass(frozen=True, slots=True)
class CudaVariant:
    """A CUDA wheel index and the oldest driver that runs its CUDA release."""

    tag: str  # "cu124"
    cuda: str  # "12.4"
    linux_driver: tuple[int, ...]
    windows_driver: tuple[int, ...]


# The drivers each CUDA release needs: CUDA release notes, "CUDA Toolkit and Corresponding
# Driver Versions" (GA releases). cu132 is left out until its driver is checked.
CUDA_VARIANTS = (
    CudaVariant("cu130", "13.0", (580, 65, 6), (580, 88)),
    CudaVariant("cu125", "12.5", (555, 42, 2), (555, 85)),
    CudaVariant("cu124", "12.4", (550, 54, 14), (551, 61)),
    CudaVariant("cu123", "12.3", (545, 23, 6), (545, 84)),
    CudaVariant("cu122", "12.2", (535, 54, 3), (536, 25)),
    CudaVariant("cu121", "12.1", (530, 30, 2), (531, 14)),
)
# Blackwell (compute 10.x/12.x) needs CUDA 12.8 or newer: of the wheels, only cu130.
BLACKWELL_MIN_CUDA = "13.0"

BACKENDS = (
    Backend("cpu", "CPU", PORTABLE_CMAKE, ("CPU",), ("cpu",), "Linux, macOS, Windows"),
    Backend(
        "cuda",
        "CUDA",
        "-DGGML_CUDA=on",
        ("CUDA",),
        tuple(v.tag for v in CUDA_VARIANTS),
        "Linux x86_64, Windows (NVIDIA driver; CUDA runtime libraries)",
    ),
    Backend("metal", "Metal", "-DGGML_METAL=on", ("MTL", "Metal"), ("metal",), "macOS arm64"),
    Backend("rocm", "ROCm", "-DGGML_HIP=on", ("ROCm", "HIP"), ("rocm72",), "Linux x86_64"),
    Backend("vulkan", "Vulkan", "-DGGML_VULKAN=on", ("Vulkan",), ("vulkan",), "Linux, Windows"),
)
BACKEND_NAMES = tuple(b.name for b in BACKENDS)


def backend(name: str) -> Backend:
    """The backend called ``name`` (``cuda``, …); KeyError for anything else."""
    for each in BACKENDS:
        if each.name == name:
            return each
    raise KeyError(name)


def index_url(variant: str) -> str:
    return f"{WHEEL_INDEX}/{variant}"


def _version(text: str | None) -> tuple[int, ...]:
    parts = []
    for part in (text or "").strip().split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def cuda_variant(driver: str | None, system: str = "Linux", blackwell: bool = False) -> str | None:
    """The newest CUDA wheel index this NVIDIA driver runs, or None (build from source)."""
    if not driver:
        return None
    version = _version(driver)
    for variant in CUDA_VARIANTS:
        if blackwell and _version(variant.cuda) < _version(BLACKWELL_MIN_CUDA):
            continue
        needed = variant.windows_driver if system == "Windows" else variant.linux_driver
        if version >= needed:
            return variant.tag
    return None


def pip_install(variant: str, *, pip: str = "pip", find_links: str | None = None) -> str:
    """The safe pip line: the pinned wheel from ``variant``'s index, never a source build.

    ``--no-deps`` because only llama-cpp-python changes (its dependencies are Ponder's
    too); ``find_links`` replaces the index with a folder or page of wheels (a mirror).
    """
    source = (
        f"--no-index --find-links {shlex.quote(find_links)}"
        if find_links
        else f"--extra-index-url {index_url(variant)}"
    )
    return (
        f"{pip} install --force-reinstall --no-deps --only-binary {PACKAGE} {source} "
        f"{PACKAGE}=={LLAMA_CPP_PIN}"
    )


def pip_install_argv(variant: str, *, find_links: str | None = None) -> list[str]:
    """:func:`pip_install` as arguments after ``python -m pip``."""
    return shlex.split(pip_install(variant, pip="", find_links=find_links))


def uv_tool_install(variant: str, spec: str = "ponder") -> str:
    """The install.sh line: Ponder as a uv tool with the pinned wheel of ``variant``."""
    return (
        f'uv tool install {spec} --with "{PACKAGE}=={LLAMA_CPP_PIN}" '
        f"--index {index_url(variant)} --no-build-package {PACKAGE}"
    )


def source_build(cmake_flag: str, system: str = "Linux") -> str:
    """The source rebuild with ``cmake_flag`` (no prebuilt wheel fits), in the shell's syntax."""
    pip = f"pip install --force-reinstall --no-cache-dir {PACKAGE}=={LLAMA_CPP_PIN}"
    if system == "Windows":
        return f'$env:CMAKE_ARGS = "{cmake_flag}"; {pip}'
    return f'CMAKE_ARGS="{cmake_flag}" {pip}'
