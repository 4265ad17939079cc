"""The load planner: :func:`plan` turns a model and a machine into load parameters.

Pure (no probing, no I/O), budgeted with :func:`~ponder.hardware.footprint.estimate`
against *free* memory. When the defaults do not fit, the context shrinks first (halving,
never below 4,096), then fewer layers are offloaded, then the CPU alone; if even that does
not fit, the verdict is ``too_big``, with :func:`refusal`'s numbers. Memory-mapping goes off
before the context shrinks (see :mod:`ponder.hardware.footprint`). What the user asked for
and what loaded before come in as :class:`Overrides`; :func:`step_down` is the retry after
an out-of-memory failure. Every plan that fits carries its predicted speed
(:func:`~ponder.hardware.speed.predict`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ponder.hardware.facts import ModelFacts
from ponder.hardware.footprint import Estimate, estimate
from ponder.hardware.profile import HardwareProfile
from ponder.hardware.speed import Speed, predict
from ponder.units import gib

DEFAULT_CTX = 16_384
MIN_CTX = 4_096
N_BATCH = 512
KV_TYPE = "f16"

Verdict = Literal["gpu", "partial", "cpu", "too_big"]


@dataclass(frozen=True, slots=True)
class WorkingSettings:
    """Load settings that worked for one model on one machine (see :class:`LoadMemory`)."""

    n_gpu_layers: int
    n_ctx: int
    use_mmap: bool = True
    after_oom: bool = False  # reached by step_down() after an out-of-memory failure


@dataclass(frozen=True, slots=True)
class Overrides:
    """What the user asked for (--gpu-layers, --ctx, --threads) and what worked before."""

    n_gpu_layers: int | None = None  # -1: all layers
    n_ctx: int | None = None
    n_threads: int | None = None
    remembered: WorkingSettings | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """How to load a model here, why, and what it will cost."""

    verdict: Verdict
    n_gpu_layers: int  # llama.cpp's count: 0 … n_layers_total (repeating blocks + output)
    n_layers_total: int
    n_ctx: int
    n_threads: int
    n_threads_batch: int
    estimate: Estimate
    model_name: str = ""
    n_batch: int = N_BATCH
    flash_attn: bool = True
    kv_type: str = KV_TYPE
    use_mmap: bool = True
    use_mlock: bool = False
    notes: tuple[str, ...] = ()  # why the plan is what it is
    warnings: tuple[str, ...] = ()  # what the user should see even without --verbose
    speed: Speed | None = None  # predicted tokens/s; None when it does not fit

    @property
    def fits(self) -> bool:
        return self.verdict != "too_big" and self.estimate.fits

    def working_settings(self, *, after_oom: bool = False) -> WorkingSettings:
        return WorkingSettings(self.n_gpu_layers, self.n_ctx, self.use_mmap, after_oom)


@dataclass(frozen=True, slots=True)
class _Config:
    n_gpu_layers: int
    n_ctx: int
    use_mmap: bool


def default_context(model: ModelFacts) -> int:
    return max(1, min(DEFAULT_CTX, model.n_ctx_train))


def context_floor(model: ModelFacts) -> int:
    return max(1, min(MIN_CTX, model.n_ctx_train))


def context_ladder(top: int, floor: int) -> list[int]:
    """``top`` halved down to ``floor``: 16384, 8192, 4096."""
    ladder = [max(top, floor)]
    while ladder[-1] > floor:
        ladder.append(max(floor, ladder[-1] // 2))
    return ladder


def plan(model: ModelFacts, hw: HardwareProfile, overrides: Overrides | None = None) -> Plan:
    """The load parameters for ``model`` on ``hw`` (pure: no probing, no I/O)."""
    ov = overrides or Overrides()
    notes: list[str] = []
    ladder = _ladder(model, ov, notes)
    layers = _layer_options(model, hw, ov, notes)
    mmaps = _mmap_options(ov)
    found = _search(model, hw, layers, ladder, mmaps)
    if found is not None:
        return _build(model, hw, ov, found, notes)
    if _overridden(ov):
        fallback = _Config(layers[0], ladder[-1], use_mmap=False)
        return _build(model, hw, ov, fallback, notes)
    return _too_big(model, hw, ov, ladder[-1], notes)


def _overridden(ov: Overrides) -> bool:
    return ov.n_gpu_layers is not None or ov.n_ctx is not None


def _ladder(model: ModelFacts, ov: Overrides, notes: list[str]) -> list[int]:
    if ov.n_ctx is not None:
        if ov.n_ctx > model.n_ctx_train:
            notes.append(
                f"context {ov.n_ctx:,} is above the model's trained {model.n_ctx_train:,}; capped"
            )
        return [max(1, min(ov.n_ctx, model.n_ctx_train))]
    top, floor = default_context(model), context_floor(model)
    remembered = ov.remembered
    if remembered is not None and remembered.after_oom:
        top = max(floor, min(top, remembered.n_ctx))
    return context_ladder(top, floor)


def _layer_options(
    model: ModelFacts, hw: HardwareProfile, ov: Overrides, notes: list[str]
) -> list[int]:
    full = model.n_layer + 1
    if not hw.offload_devices:
        if ov.n_gpu_layers:
            notes.append("this llama.cpp build has no GPU device: --gpu-layers is ignored")
        return [0]
    if ov.n_gpu_layers is not None:
        wanted = full if ov.n_gpu_layers < 0 else min(ov.n_gpu_layers, full)
        return [wanted]
    top = full
    if ov.remembered is not None and ov.remembered.after_oom:
        top = min(full, max(0, ov.remembered.n_gpu_layers))
    return list(range(top, -1, -1))


def _mmap_options(ov: Overrides) -> tuple[bool, ...]:
    remembered = ov.remembered
    if remembered is not None and remembered.after_oom and not remembered.use_mmap:
        return (False,)
    return (True, False)


def _search(
    model: ModelFacts,
    hw: HardwareProfile,
    layers: list[int],
    ladder: list[int],
    mmaps: tuple[bool, ...],
) -> _Config | None:
    """Most layers that fit at the smallest context; then the largest context for them."""
    for g in layers:
        if _fitting(model, hw, g, ladder[-1], mmaps) is None:
            continue
        for n_ctx in ladder:
            found = _fitting(model, hw, g, n_ctx, mmaps)
            if found is not None:
                return found
    return None


def _fitting(
    model: ModelFacts, hw: HardwareProfile, g: int, n_ctx: int, mmaps: tuple[bool, ...]
) -> _Config | None:
    for use_mmap in mmaps:
        if estimate(model, hw, g, n_ctx, use_mmap=use_mmap).fits:
            return _Config(g, n_ctx, use_mmap)
    return None


def _verdict(g: int, full: int) -> Verdict:
    return "gpu" if g >= full else "partial" if g > 0 else "cpu"


def _build(
    model: ModelFacts, hw: HardwareProfile, ov: Overrides, config: _Config, notes: list[str]
) -> Plan:
    full = model.n_layer + 1
    est = estimate(model, hw, config.n_gpu_layers, config.n_ctx, use_mmap=config.use_mmap)
    g = config.n_gpu_layers if hw.offload_devices else 0
    notes = notes + _why(model, hw, ov, config)
    warnings = [] if est.fits else _misfit(est)
    threads = max(1, ov.n_threads or hw.performance_cores)
    speed = predict(model, hw, n_gpu_layers=g, n_ctx=config.n_ctx, n_threads=threads)
    return Plan(
        verdict=_verdict(g, full),
        n_gpu_layers=g,
        n_layers_total=full,
        n_ctx=config.n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        estimate=est,
        model_name=model.name,
        use_mmap=config.use_mmap,
        notes=tuple(notes),
        warnings=tuple(warnings),
        speed=speed,
    )


def _why(model: ModelFacts, hw: HardwareProfile, ov: Overrides, config: _Config) -> list[str]:
    why: list[str] = []
    default = default_context(model)
    full = model.n_layer + 1
    if ov.n_ctx is None and config.n_ctx < default:
        why.append(f"context reduced from {default:,} to {config.n_ctx:,} tokens to fit")
    if ov.n_gpu_layers is None and hw.offload_devices and config.n_gpu_layers < full:
        why.append(
            f"{config.n_gpu_layers} of {full} layers fit on the GPU; the rest run on the CPU"
        )
    if not config.use_mmap:
        why.append("memory-mapping off: the CPU's repacked weights replace the file's pages")
    if ov.remembered is not None and ov.remembered.after_oom:
        why.append("starting from settings that loaded after an out-of-memory failure")
    return why


def _misfit(est: Estimate) -> list[str]:
    out = [
        f"will not fit: {d.device} needs {gib(d.need)}, has {gib(d.budget)} free"
        for d in est.devices
        if not d.fits
    ]
    if est.ram_need > est.ram_budget and est.cpu.fits:
        out.append(f"will not fit: RAM needs {gib(est.ram_need)}, has {gib(est.ram_budget)} free")
    return out


def _too_big(
    model: ModelFacts, hw: HardwareProfile, ov: Overrides, floor: int, notes: list[str]
) -> Plan:
    full = model.n_layer + 1
    g = full if hw.offload_devices else 0
    est = estimate(model, hw, g, floor, use_mmap=False)
    message = refusal(model, hw, est, floor)
    threads = max(1, ov.n_threads or hw.performance_cores)
    return Plan(
        verdict="too_big",
        n_gpu_layers=g,
        n_layers_total=full,
        n_ctx=floor,
        n_threads=threads,
        n_threads_batch=threads,
        estimate=est,
        model_name=model.name,
        use_mmap=False,
        notes=tuple(notes),
        warnings=(message,),
    )


def refusal(model: ModelFacts, hw: HardwareProfile, est: Estimate, n_ctx: int) -> str:
    """Why a model cannot run here, with the numbers."""
    label = f"{model.name} {model.quant}" if model.quant else model.name
    need = est.total + sum(d.margin for d in est.devices)
    free = [f"{gib(d.budget)} on {d.device}" for d in est.gpus if not d.unified]
    free.append(f"{gib(hw.ram_available)} of RAM")
    return (
        f"{label} needs about {gib(need)} at {n_ctx:,} tokens of context "
        f"(weights {gib(model.weight_bytes)}, KV cache {gib(est.kv)}, compute {gib(est.compute)}, "
        f"headroom {gib(need - est.total)}); this machine has {' and '.join(free)} free"
    )


# ======================================================================= out-of-memory retry


def step_down(plan_: Plan, model: ModelFacts, hw: HardwareProfile) -> Plan | None:
    """The next smaller configuration after an out-of-memory load failure, or None.

    Fewer GPU layers first (an eighth of them at a time), then half the context (never
    below the floor), then memory-mapping off; each step re-estimated for the record.
    """
    full = model.n_layer + 1
    g, n_ctx, use_mmap = plan_.n_gpu_layers, plan_.n_ctx, plan_.use_mmap
    if g > 0:
        g = max(0, g - max(1, full // 8))
    elif n_ctx > context_floor(model):
        n_ctx = max(context_floor(model), n_ctx // 2)
    elif use_mmap:
        use_mmap = False
    else:
        return None
    est = estimate(model, hw, g, n_ctx, use_mmap=use_mmap)
    note = f"stepped down after an out-of-memory failure: {g}/{full} layers, context {n_ctx:,}"
    return replace(
        plan_,
        verdict=_verdict(g, full),
        n_gpu_layers=g,
        n_ctx=n_ctx,
        use_mmap=use_mmap,
        estimate=est,
        notes=(*plan_.notes, note),
        warnings=tuple(_misfit(est)),
        speed=predict(model, hw, n_gpu_layers=g, n_ctx=n_ctx, n_threads=plan_.n_threads),
    )
