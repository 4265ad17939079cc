"""Loading a planned model: the engine's load parameters from a plan, and the step-down
after llama.cpp runs out of memory (fewer GPU layers, then a smaller context), with what
finally loaded remembered per model and machine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ponder import devices, hardware
from ponder.engine import Engine, EngineLoader, LoadParams
from ponder.errors import ModelLoadError
from ponder.session.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """How to open a model; every None is planned for this machine or taken from the GGUF."""

    n_ctx: int | None = None
    n_threads: int | None = None
    n_gpu_layers: int | None = None
    chat_format: str | None = None  # a built-in template instead of the GGUF's
    chat_template: Path | None = None  # a Jinja template file instead of the GGUF's


DEFAULT_OPTIONS = ModelOptions()


def load_stepping_down(
    load_engine: EngineLoader,
    spec: ModelSpec,
    plan: hardware.Plan,
    hw: hardware.HardwareProfile,
    memory: hardware.LoadMemory,
    notice: Callable[[str], None],
) -> tuple[Engine, hardware.Plan]:
    """Load ``spec`` with ``plan``; after an out-of-memory failure step down and try again.

    Returns the engine and the plan it loaded with, which is remembered for next time.
    """
    current, stepped = plan, False
    while True:
        try:
            engine = load_engine(spec.info, load_params(current))
            break
        except ModelLoadError as failure:
            smaller = _after_oom(failure, current, spec, hw)
            if smaller is None:
                raise
            notice(
                f"{failure.message}; retrying with {smaller.n_gpu_layers} GPU layers "
                f"and a {smaller.n_ctx:,}-token context"
            )
            current, stepped = smaller, True
    memory.remember(model_key(spec), hw.fingerprint, current.working_settings(after_oom=stepped))
    return engine, current


def load_params(plan: hardware.Plan) -> LoadParams:
    return LoadParams(
        n_ctx=plan.n_ctx,
        n_gpu_layers=plan.n_gpu_layers,
        n_threads=plan.n_threads,
        n_threads_batch=plan.n_threads_batch,
        n_batch=plan.n_batch,
        flash_attn=plan.flash_attn,
        use_mmap=plan.use_mmap,
        use_mlock=plan.use_mlock,
    )


def probes() -> hardware.Probes:
    return hardware.Probes(ggml_devices=devices.ggml_devices, system_info=devices.system_info)


def model_key(spec: ModelSpec) -> str:
    return hardware.model_key(spec.path.name, spec.info.file_size)


OOM_WORDS = ("memory", "alloc")


def _after_oom(
    failure: ModelLoadError, plan: hardware.Plan, spec: ModelSpec, hw: hardware.HardwareProfile
) -> hardware.Plan | None:
    """The next smaller plan when llama.cpp ran out of memory; None for other failures."""
    if not any(word in failure.message.lower() for word in OOM_WORDS):
        return None
    return hardware.step_down(plan, hardware.ModelFacts.from_gguf(spec.info), hw)
