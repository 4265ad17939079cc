"""What this machine can run, as front ends show it: ``doctor``, ``fit``, ``setup``, the
welcome screen's recommendation and the model picker's fit badges.

Each function takes the session (its catalog, store and machine profile) and returns
plain data or text rendered by :mod:`ponder.hardware`, so neither front end imports
the planner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ponder import hardware
from ponder.catalog import Resolved
from ponder.errors import UsageError
from ponder.session.core import Session
from ponder.session.loaded import placement
from ponder.units import decimal_size

__all__ = [
    "BADGES",
    "CatalogFit",
    "DoctorReport",
    "Recommendation",
    "catalog_fits",
    "doctor",
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


@dataclass(frozen=True, slots=True)
class CatalogFit:
    """One catalog model's best quant for the model picker."""

    ref: str
    name: str
    size: int
    badge: str  # "GPU", "partial 20/33", "CPU", "too big"


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
    """``ponder fit``: every catalog model, or one with the plan it would load with."""
    hw = session.machine()
    if ref is None:
        table = hardware.render_fit_table(hardware.fit_table(session.catalog, hw))
        served = ", ".join(e.short_name for e in session.catalog.served)
        return table + (
            f"\non a server only: {served} (`ponder fit NAME` says how)" if served else ""
        )
    served_entry = session.catalog.served_entry(ref)
    if served_entry is not None:
        lines = served_entry.how_to_serve()
        remotes = session.remotes.serving(served_entry)
        lines.append(
            "served by your remote " + ", ".join(remotes)
            if remotes
            else f"then: `ponder remote add NAME URL`, `ponder run NAME:{served_entry.upstream}`"
        )
        return "\n".join(lines)
    entry = session.default_quant(ref)
    plan = hardware.plan_quant(entry.model, entry.quant, hw)
    if plan is None:
        raise UsageError(f"{entry.display_ref} has no architecture numbers in the catalog")
    return "\n".join(
        [
            f"{entry.display_ref}: {decimal_size(entry.quant.size_bytes)} on disk",
            hardware.render_plan(plan),
            hardware.render_fit_table(hardware.fit_table([entry.model], hw)),
        ]
    )


def hardware_report(session: Session) -> str:
    """The chat UI's hardware screen: the doctor's report and what fits."""
    report = doctor(session).text
    table = hardware.render_fit_table(hardware.fit_table(session.catalog, session.machine()))
    return f"{report}\n\nWhat fits\n{table}"


def recommend(
    session: Session, hw: hardware.HardwareProfile | None = None
) -> Recommendation | None:
    """The most capable R1 distill that fits this machine (or ``hw``), or None."""
    choice = hardware.recommend(session.catalog, hw or session.machine())
    if choice is None:
        return None
    plan = choice.plan
    installed = session.store.find_catalog(choice.model.id, choice.quant.quant)
    return Recommendation(
        ref=Resolved(choice.model, choice.quant).display_ref,
        name=choice.model.name,
        size=choice.quant.size_bytes,
        placement=placement(plan.n_gpu_layers, plan.n_layers_total),
        n_ctx=plan.n_ctx,
        reason=choice.reason,
        plan=hardware.render_plan(plan),
        installed=installed is not None,
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
            )
        )
    return rows
