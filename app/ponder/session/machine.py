"""What this machine can run, as front ends show it: ``doctor``, ``fit``, ``setup``, the
welcome screen's recommendation and the model picker's fit badges. Speeds are predicted
from the plan and this machine's memory bandwidth (:mod:`ponder.hardware.speed`), and
"usable" is the ``usable_tok_s`` setting.

Each function takes the session (its catalog, store and machine profile) and returns
plain data or text rendered by :mod:`ponder.hardware`, so neither front end imports
the planner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ponder import gguf_info, hardware
from ponder.catalog import ModelEntry, Resolved, ServedEntry
from ponder.errors import UsageError
from ponder.session.core import Session
from ponder.session.local_model import placement
from ponder.session.spec import NotInstalledError, looks_like_path
from ponder.units import decimal_size

__all__ = [
    "BADGES",
    "CatalogFit",
    "DoctorReport",
    "Recommendation",
    "catalog_fits",
    "doctor",
    "fit_data",
    "fit_report",
    "hardware_report",
    "one_line",
    "placement",
    "recommend",
]


@dataclass(frozen=True, slots=True)
class DoctorReport:
    text: str
    problems: tuple[tuple[str, str, str | None], ...]  # (severity, message, fix)
    data: dict[str, Any] = field(default_factory=dict)  # ``ponder doctor --json``

    @property
    def has_errors(self) -> bool:
        return any(severity == "error" for severity, _, _ in self.problems)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The distill to start with on this machine, and why."""

    ref: str  # "r1:1.5b@Q4_K_M", also the name it is installed under
    name: str  # "DeepSeek-R1-Distill-Qwen-1.5B"
    size: int
    placement: str
    n_ctx: int
    reason: str
    plan: str  # the plan as text
    installed: bool
    speed: str = ""  # "≈ 26 tok/s · about 1 min for a 1,500-token reply"
    decode_tok_s: float = 0.0
    bigger: Recommendation | None = None  # the slower, more capable choice, when one fits


@dataclass(frozen=True, slots=True)
class CatalogFit:
    """One catalog model's best quant for the model picker."""

    ref: str
    name: str
    size: int
    badge: str  # "GPU", "partial 20/33", "CPU", "too big"
    speed: str = ""  # "≈ 26 tok/s" as predicted here, "-" when it does not run


BADGES = {"gpu": "GPU", "partial": "partial", "cpu": "CPU", "too_big": "too big"}


def one_line(session: Session) -> str:
    """This machine in one line (the welcome screen, the model picker)."""
    return hardware.render_one_line(session.machine())


def doctor(session: Session) -> DoctorReport:
    """What this machine has, what the installed llama.cpp can use, and the fixes."""
    hw = session.machine(os_gpus=True)
    findings = hardware.diagnose(hw)
    return DoctorReport(
        hardware.render_doctor(hw, findings),
        tuple((f.severity, f.message, f.fix) for f in findings),
        hardware.doctor_data(hw, findings),
    )


def fit_report(session: Session, ref: str | None = None) -> str:
    """``ponder fit``: every catalog model, best choices here first, with its predicted
    speed; or one model (any Ponder can run) with the plan it would load with."""
    hw = session.machine()
    usable = session.settings.usable_tok_s
    if ref is None:
        rows = hardware.fit_table(session.catalog, hw, usable_tok_s=usable)
        served = ", ".join(e.short_name for e in session.catalog.served)
        return "\n".join(
            [
                _basis_line(hw, usable),
                hardware.render_fit_table(rows),
                *([f"on a server only: {served} (`ponder fit NAME` says how)"] if served else []),
            ]
        )
    served_entry = session.catalog.served_entry(ref)
    if served_entry is not None:
        return "\n".join(_serving_lines(session, served_entry))
    target = _target(session, ref)
    lines = [
        f"{target.label}: {decimal_size(target.size)} on disk ({target.source})",
        hardware.render_plan(target.plan),
    ]
    if target.model is not None:
        rows = hardware.fit_table([target.model], hw, usable_tok_s=usable)
        lines.append(hardware.render_fit_table(rows))
    return "\n".join(lines)


def fit_data(session: Session, ref: str | None = None) -> dict[str, Any]:
    """``ponder fit --json``: the same, as one JSON-ready object."""
    hw = session.machine()
    usable = session.settings.usable_tok_s
    if ref is None:
        rows = hardware.fit_table(session.catalog, hw, usable_tok_s=usable)
        served = [e.short_name for e in session.catalog.served]
        return hardware.fit_data(rows, hw, usable, served)
    served_entry = session.catalog.served_entry(ref)
    if served_entry is not None:
        return {
            "schema": 1,
            "model": served_entry.short_name,
            "served_only": True,
            "remotes": session.remotes.serving(served_entry),
            "how_to_serve": _serving_lines(session, served_entry),
        }
    target = _target(session, ref)
    rows = []
    if target.model is not None:
        rows = hardware.fit_table([target.model], hw, usable_tok_s=usable)
    data = hardware.fit_data(rows, hw, usable)
    return {
        "schema": data["schema"],
        "model": target.label,
        "source": target.source,
        "path": str(target.path) if target.path else None,
        "size_bytes": target.size,
        "plan": hardware.plan_data(target.plan),
        "machine": data["machine"],
        "rows": data["rows"],
    }


def _serving_lines(session: Session, entry: ServedEntry) -> list[str]:
    lines = entry.how_to_serve()
    remotes = session.remotes.serving(entry)
    lines.append(
        "served by your remote " + ", ".join(remotes)
        if remotes
        else f"then: `ponder remote add NAME URL`, `ponder run NAME:{entry.upstream}`"
    )
    return lines


def _basis_line(hw: hardware.HardwareProfile, usable: float) -> str:
    """What the speeds rest on, above the table."""
    ram, measured = hardware.ram_bandwidth(hw, hw.performance_cores)
    how = "measured once and remembered" if measured else "not measured: a guess"
    return (
        f"speeds predicted for this machine: RAM reads {ram / 1e9:.1f} GB/s with "
        f"{hw.performance_cores} threads ({how}); the best choices here first "
        f"(at least {usable:g} tok/s and an 8,192-token context; setting `usable_tok_s`)"
    )


@dataclass(frozen=True, slots=True)
class _Target:
    """One model ``ponder fit MODEL`` names, planned for this machine."""

    label: str
    size: int
    source: str  # "catalog, not downloaded" | "installed" | "file"
    plan: hardware.Plan
    model: ModelEntry | None = None  # its catalog entry, for the table of its quants
    path: Path | None = None


def _target(session: Session, ref: str) -> _Target:
    """A path to a GGUF, an installed model (by its name, catalog name or ``hf:``
    reference), or a catalog model not downloaded yet (planned from the catalog's
    numbers). Nothing is loaded, nothing is fetched."""
    hw = session.machine()
    overrides = hardware.Overrides(n_threads=session.settings.threads)
    if looks_like_path(ref) and not ref.lower().startswith("hf:"):
        spec = session.resolve(ref)
        facts = hardware.ModelFacts.from_gguf(spec.info)
        model = session.catalog.get(spec.catalog_id) if spec.catalog_id else None
        plan = hardware.plan(facts, hw, overrides)
        return _Target(spec.name, spec.info.file_size, "file", plan, model, spec.path)
    try:
        installed, entry = session.resolver.installed(ref)
    except NotInstalledError:
        if ref.lower().startswith("hf:"):
            raise
        resolved = session.default_quant(ref)
        planned = hardware.plan_quant(resolved.model, resolved.quant, hw)
        if planned is None:
            raise UsageError(
                f"{resolved.display_ref} has no architecture numbers in the catalog"
            ) from None
        return _Target(
            resolved.display_ref,
            resolved.quant.size_bytes,
            "catalog, not downloaded",
            planned,
            resolved.model,
        )
    path = session.store.primary_path(installed)
    info = gguf_info.inspect(path)
    plan = hardware.plan(hardware.ModelFacts.from_gguf(info), hw, overrides)
    model = entry.model if entry is not None else None
    return _Target(installed.name, info.file_size, "installed", plan, model, path)


def hardware_report(session: Session) -> str:
    """The chat UI's hardware screen: the doctor's report and what fits."""
    report = doctor(session).text
    hw = session.machine()
    usable = session.settings.usable_tok_s
    rows = hardware.fit_table(session.catalog, hw, usable_tok_s=usable)
    table = hardware.render_fit_table(rows, reply=False)
    return f"{report}\n\nWhat fits, best choices here first (decode speed here)\n{table}"


def recommend(
    session: Session, hw: hardware.HardwareProfile | None = None
) -> Recommendation | None:
    """The most capable R1 distill that fits this machine (or ``hw``) and thinks at the
    usable speed (the ``usable_tok_s`` setting), with the bigger, slower one; or None."""
    choice = hardware.recommend(
        session.catalog, hw or session.machine(), usable_tok_s=session.settings.usable_tok_s
    )
    if choice is None:
        return None
    bigger = _recommendation(session, choice.bigger) if choice.bigger is not None else None
    return _recommendation(session, choice, bigger)


def _recommendation(
    session: Session, choice: hardware.Recommendation, bigger: Recommendation | None = None
) -> Recommendation:
    plan = choice.plan
    installed = session.store.find_catalog(choice.model.id, choice.quant.quant)
    speed = plan.speed
    return Recommendation(
        ref=Resolved(choice.model, choice.quant).display_ref,
        name=choice.model.name,
        size=choice.quant.size_bytes,
        placement=placement(plan.n_gpu_layers, plan.n_layers_total),
        n_ctx=plan.n_ctx,
        reason=choice.reason,
        plan=hardware.render_plan(plan),
        installed=installed is not None,
        speed=hardware.speed_phrase(speed) if speed is not None else "",
        decode_tok_s=speed.decode_tok_s if speed is not None else 0.0,
        bigger=bigger,
    )


def catalog_fits(session: Session) -> list[CatalogFit]:
    """Each catalog model's best quant here, best first, with its fit badge."""
    rows = []
    for row in hardware.best_fit_rows(session.catalog, session.machine()):
        badge = BADGES[row.verdict]
        if row.verdict == "partial":
            badge = f"partial {row.plan.n_gpu_layers}/{row.plan.n_layers_total}"
        rows.append(
            CatalogFit(
                ref=Resolved(row.model, row.quant).display_ref,
                name=row.model.name,
                size=row.quant.size_bytes,
                badge=badge,
                speed=hardware.speed_cell(row, reply=False),
            )
        )
    return rows
