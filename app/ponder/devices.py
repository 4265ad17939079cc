"""Ask the installed llama.cpp which devices it can use, and what its CPU backend was built with.

Why this exists: only the llama.cpp build itself knows whether it can offload to a GPU.
An NVIDIA card that ``nvidia-smi`` lists is useless to a CPU-only wheel, and a Metal
device exists only in a Metal build. ggml keeps a registry of backend devices, each
with a name (``CUDA0``, ``ROCm0``, ``Vulkan0``, ``MTL0``, ``CPU``), a description (the
card's marketing name), a type (CPU, GPU, integrated GPU, accelerator) and its free and
total memory. llama-cpp-python binds ``llama.h`` but not ``ggml-backend.h``, so the
registry is reached here through :mod:`ctypes` on ``llama_cpp._ggml.libggml``
(signatures from ``ggml-backend.h``; the device-type enum order is part of that header).

This module sits beside :mod:`ponder.engine`: it may import ``llama_cpp`` (lazily, on
first call, so importing Ponder stays fast). :mod:`ponder.hardware` never imports it;
the session injects :func:`ggml_devices` and :func:`system_info` as probes, which keeps
the planner testable with recorded device lists.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from dataclasses import dataclass
from typing import Any

# enum ggml_backend_dev_type, in header order (ggml-backend.h)
_DEVICE_KINDS = ("cpu", "gpu", "igpu", "accel", "meta")
_INIT_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class GgmlDevice:
    """One device of ggml's backend registry, as this llama.cpp build sees it."""

    name: str  # e.g. "CUDA0", "ROCm0", "Vulkan0", "MTL0", "BLAS", "CPU"
    description: str  # e.g. "NVIDIA GeForce RTX 4090", "Apple M2"
    kind: str  # "cpu" | "gpu" | "igpu" | "accel" | "meta" | "unknown"
    free_bytes: int
    total_bytes: int


def _llama_cpp() -> Any:
    import llama_cpp

    return llama_cpp


@functools.cache
def _libggml() -> Any:
    """libggml with the registry functions' signatures declared (once per process)."""
    from llama_cpp import _ggml

    lib = _ggml.libggml
    ptr, size_t = ctypes.c_void_p, ctypes.c_size_t
    lib.ggml_backend_dev_count.argtypes = []
    lib.ggml_backend_dev_count.restype = size_t
    lib.ggml_backend_dev_get.argtypes = [size_t]
    lib.ggml_backend_dev_get.restype = ptr
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(lib, name).argtypes = [ptr]
        getattr(lib, name).restype = ctypes.c_char_p
    lib.ggml_backend_dev_type.argtypes = [ptr]
    lib.ggml_backend_dev_type.restype = ctypes.c_int
    lib.ggml_backend_dev_memory.argtypes = [ptr, ctypes.POINTER(size_t), ctypes.POINTER(size_t)]
    lib.ggml_backend_dev_memory.restype = None
    return lib


def _initialised() -> Any:
    """llama.cpp with its backends registered (``llama_backend_init`` is idempotent)."""
    llama_cpp = _llama_cpp()
    with _INIT_LOCK:
        llama_cpp.llama_backend_init()
        lib = _libggml()
        if lib.ggml_backend_dev_count() == 0:
            _load_dynamic_backends(lib)
    return lib


def _load_dynamic_backends(lib: Any) -> None:
    """A build with GGML_BACKEND_DL registers nothing until its backend libraries load."""
    loader = getattr(lib, "ggml_backend_load_all", None)
    if loader is not None:
        loader.argtypes = []
        loader.restype = None
        loader()


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", errors="replace").strip() if raw else ""


def _device(lib: Any, index: int) -> GgmlDevice:
    dev = lib.ggml_backend_dev_get(index)
    free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
    lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
    kind_index = int(lib.ggml_backend_dev_type(dev))
    kind = _DEVICE_KINDS[kind_index] if 0 <= kind_index < len(_DEVICE_KINDS) else "unknown"
    return GgmlDevice(
        name=_text(lib.ggml_backend_dev_name(dev)),
        description=_text(lib.ggml_backend_dev_description(dev)),
        kind=kind,
        free_bytes=int(free.value),
        total_bytes=int(total.value),
    )


def ggml_devices() -> list[GgmlDevice]:
    """Every device of the registry, in registry order (GPUs first, the CPU last).

    Free memory is read now: call again for a fresh figure before planning a load.
    Raises whatever loading llama.cpp raises (ImportError, OSError); the hardware
    probe records that as a finding instead of failing.
    """
    lib = _initialised()
    return [_device(lib, index) for index in range(int(lib.ggml_backend_dev_count()))]


def system_info() -> str:
    """llama.cpp's build summary, e.g. ``"CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | ..."``."""
    _initialised()
    raw = _llama_cpp().llama_print_system_info()
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def supports_gpu_offload() -> bool:
    """True when this build has a GPU or integrated-GPU device registered."""
    _initialised()
    return bool(_llama_cpp().llama_supports_gpu_offload())
