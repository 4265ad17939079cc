"""Plain text for ``ponder doctor``, ``ponder fit`` and ``--verbose``; the caller prints it.

Speeds read as a user feels them: "≈ 26 tok/s · about 1 min for a 1,500-token reply".
"""

from __future__ import annotations

from collections.abc import Sequence

from ponder.hardware.diagnosis import Finding, diagnose
from ponder.hardware.fit import FitRow
from ponder.hardware.footprint import DeviceUse
from ponder.hardware.planner import Plan
from ponder.hardware.profile import BackendDevice, HardwareProfile, OsGpu
from ponder.hardware.speed import REPLY_TOKENS, Speed
from ponder.units import gib

_MARKS = {"error": "ERROR", "warning": "WARN ", "info": "INFO ", "ok": "OK   "}


def render_doctor(hw: HardwareProfile, findings: Sequence[Finding] | None = None) -> str:
    """The ``ponder doctor`` report as plain text (the caller prints it)."""
    found = diagnose(hw) if findings is None else findings
    lines = ["Hardware", *_profile_lines(hw), "", "Findings"]
    for finding in found:
        lines.append(f"  {_MARKS[finding.severity]} {finding.message}")
        for i, line in enumerate((finding.fix or "").splitlines()):
            lines.append(f"        {'fix: ' if i == 0 else ''}{line}")
    return "\n".join(lines)


def render_one_line(hw: HardwareProfile) -> str:
    """This machine in one line: system, cores, free RAM, and the GPU llama.cpp will use."""
    gpus = hw.offload_devices
    if gpus:
        first = gpus[0]
        more = f" + {len(gpus) - 1} more" if len(gpus) > 1 else ""
        gpu = f"{first.description or first.name}, {gib(first.free_bytes)} free{more}"
    else:
        gpu = "no GPU llama.cpp can use (CPU only)"
    return (
        f"{hw.system} {hw.machine} · {hw.performance_cores} cores · "
        f"{gib(hw.ram_available)} RAM free · {gpu}"
    )


def _profile_lines(hw: HardwareProfile) -> list[str]:
    system = f"{hw.system} {hw.machine}" + (" (under Rosetta 2)" if hw.rosetta else "")
    cores = (
        f"{hw.performance_cores} performance cores ({hw.physical_cores} physical, "
        f"{hw.logical_cores} logical)"
    )
    lines = [
        f"  system      {system}",
        f"  CPU         {hw.cpu_model}; {cores}",
        f"  SIMD        {', '.join(hw.simd) or 'unknown'}",
        f"  RAM         {gib(hw.ram_available)} free of {gib(hw.ram_total)}",
    ]
    devices = [_device_line(d) for d in hw.devices] or [hw.devices_error or "none"]
    lines += _labelled("llama.cpp", devices)
    lines += _labelled("OS GPUs", [_os_gpu_line(g) for g in hw.os_gpus] or ["none found"])
    if hw.notes:
        lines += _labelled("notes", list(hw.notes))
    return lines


def _labelled(label: str, items: list[str]) -> list[str]:
    return [f"  {label if i == 0 else '':<11} {item}" for i, item in enumerate(items)]


def _device_line(d: BackendDevice) -> str:
    has_memory = d.kind in ("gpu", "igpu") and d.total_bytes > 0
    memory = f", {gib(d.free_bytes)} free of {gib(d.total_bytes)}" if has_memory else ""
    return f"{d.name} ({d.kind}) {d.description}{memory}"


def _os_gpu_line(g: OsGpu) -> str:
    parts = [g.name]
    if g.total_bytes:
        parts.append(gib(g.total_bytes) + (" shared" if g.vendor == "apple" else ""))
    if g.free_bytes is not None:
        parts.append(f"{gib(g.free_bytes)} free")
    if g.driver:
        parts.append(f"driver {g.driver}")
    return ", ".join(parts) + f" (from {g.source})"


FIT_HEADER = ("MODEL", "QUANT", "SIZE", "NEEDS", "VERDICT", "CONTEXT", "GPU LAYERS", "SPEED")


def tok_s(rate: float) -> str:
    """A rate as a user reads it: "4.9", "26", "1,200"."""
    return f"{rate:.1f}" if rate < 9.95 else f"{rate:,.0f}"


def duration(seconds: float) -> str:
    """ "about 40 s", "about 1 min", "about 2.5 h"."""
    if seconds < 10:
        return f"about {max(1, round(seconds))} s"
    if seconds < 45:
        return f"about {round(seconds / 5) * 5} s"
    if seconds < 90 * 60:
        return f"about {max(1, round(seconds / 60))} min"
    hours = seconds / 3600
    return f"about {hours:.1f} h" if hours < 10 else f"about {hours:,.0f} h"


def speed_phrase(speed: Speed, tokens: int = REPLY_TOKENS) -> str:
    """ "≈ 26 tok/s · about 1 min for a 1,500-token reply" """
    reply = duration(speed.reply_s(tokens))
    return f"≈ {tok_s(speed.decode_tok_s)} tok/s · {reply} for a {tokens:,}-token reply"


def speed_line(speed: Speed, n_ctx: int) -> str:
    """The plan's speed for ``--verbose`` and ``ponder fit MODEL``."""
    full = speed.decode_full_tok_s
    guess = " (a guess: this machine's memory bandwidth was not measured)" if speed.guessed else ""
    return (
        f"speed: decode {speed_phrase(speed)}; {tok_s(full)} tok/s once the {n_ctx:,}-token "
        f"context is full; prompt ≈ {tok_s(speed.prompt_tok_s)} tok/s{guess}"
    )


def fit_cells(row: FitRow, *, reply: bool = True) -> tuple[str, ...]:
    """One fit-table row as display strings, in :data:`FIT_HEADER` order; without
    ``reply`` the speed is the rate alone ("≈ 26 tok/s"), for narrow screens."""
    p = row.plan
    runs = p.verdict != "too_big"
    return (
        row.model.short_name,
        row.quant.quant,
        gib(row.quant.size_bytes),
        gib(row.need_bytes),
        p.verdict.replace("_", " "),
        f"{p.n_ctx:,}" if runs else "-",
        f"{p.n_gpu_layers}/{p.n_layers_total}" if runs and p.estimate.gpus else "-",
        speed_cell(row, reply=reply),
    )


def speed_cell(row: FitRow, *, reply: bool = True) -> str:
    """A fit row's predicted speed ("-" when it does not run here); without ``reply``
    the rate alone ("≈ 26 tok/s")."""
    if row.speed is None:
        return "-"
    return speed_phrase(row.speed) if reply else f"≈ {tok_s(row.speed.decode_tok_s)} tok/s"


def render_fit_table(rows: Sequence[FitRow], *, reply: bool = True) -> str:
    """The fit table as aligned plain text, header first (``reply``: see :func:`fit_cells`)."""
    table = [FIT_HEADER, *(fit_cells(row, reply=reply) for row in rows)]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(FIT_HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in table]
    return "\n".join(line.rstrip() for line in lines)


def render_plan(p: Plan) -> str:
    """The plan for ``--verbose``: settings, memory per device, and why."""
    head = (
        f"plan: {p.verdict.replace('_', ' ')}, {p.n_gpu_layers}/{p.n_layers_total} layers on "
        f"GPU, context {p.n_ctx:,}, {p.n_threads} threads, batch {p.n_batch}, "
        f"flash attention {'on' if p.flash_attn else 'off'}, KV {p.kv_type}, "
        f"mmap {'on' if p.use_mmap else 'off'}"
    )
    lines = [head] + [f"  {_use_line(d)}" for d in p.estimate.devices]
    if p.speed is not None and p.fits:
        lines.append(f"  {speed_line(p.speed, p.n_ctx)}")
    lines += [f"  note: {n}" for n in p.notes] + [f"  warning: {w}" for w in p.warnings]
    return "\n".join(lines)


def _use_line(d: DeviceUse) -> str:
    return (
        f"{d.device:<8} weights {gib(d.weights)} + KV {gib(d.kv)} + compute {gib(d.compute)} "
        f"+ margin {gib(d.margin)} = {gib(d.need)} of {gib(d.budget)} free"
        + (" (shared RAM)" if d.unified else "")
    )
