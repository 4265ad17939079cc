"""The catalog against this machine: the fit table, the best quant of a model, and the
distill to recommend.

Each catalog entry is planned before download, from its architecture numbers
(:meth:`~ponder.hardware.facts.ModelFacts.from_catalog`); entries without them are left
out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ponder.catalog import Catalog, ModelEntry, QuantEntry
from ponder.hardware.facts import ModelFacts
from ponder.hardware.footprint import estimate
from ponder.hardware.planner import DEFAULT_CTX, Plan, Verdict, default_context, plan
from ponder.hardware.profile import HardwareProfile

CPU_USABLE_PARAMS_B = 8.0  # recommend(): largest distill on the CPU alone, in billions


QUANT_PRECISION = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS")  # best first
_VERDICT_RANK = {"gpu": 0, "partial": 1, "cpu": 2, "too_big": 3}
R1_FAMILY = "deepseek-r1-distill"


@dataclass(frozen=True, slots=True)
class FitRow:
    """One model × quant against this machine."""

    model: ModelEntry
    quant: QuantEntry
    plan: Plan
    need_bytes: int  # weights + KV + compute at the default context, margins left out

    @property
    def verdict(self) -> Verdict:
        return self.plan.verdict


def params_billions(model: ModelEntry) -> float | None:
    """``"1.5B"`` → 1.5; None when the catalog does not say."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([BM])\s*", model.params or "", re.IGNORECASE)
    if not match:
        return None
    value = float(match[1])
    return value / 1000 if match[2].upper() == "M" else value


def precision_rank(quant: str) -> int:
    """0 for the most precise of :data:`QUANT_PRECISION`; unknown quants rank last."""
    name = quant.upper()
    return QUANT_PRECISION.index(name) if name in QUANT_PRECISION else len(QUANT_PRECISION)


def plan_quant(model: ModelEntry, quant: QuantEntry, hw: HardwareProfile) -> Plan | None:
    """The plan for a catalog entry before download (None without architecture numbers)."""
    facts = ModelFacts.from_catalog(model, quant)
    return None if facts is None else plan(facts, hw)


def fit_row(model: ModelEntry, quant: QuantEntry, hw: HardwareProfile) -> FitRow | None:
    facts = ModelFacts.from_catalog(model, quant)
    if facts is None:
        return None
    chosen = plan(facts, hw)
    at_default = estimate(
        facts, hw, chosen.n_gpu_layers, default_context(facts), use_mmap=chosen.use_mmap
    )
    return FitRow(model, quant, chosen, at_default.total)


def fit_table(models: Catalog | Iterable[ModelEntry], hw: HardwareProfile) -> list[FitRow]:
    """Every model × quant with its verdict, best first: runs fully on the GPU before
    partly, before CPU only, before too big; then larger models, then higher precision.
    Models without architecture numbers are left out."""
    rows = [row for m in models for q in m.quants if (row := fit_row(m, q, hw)) is not None]
    return sorted(rows, key=_fit_key)


def best_fit_rows(models: Catalog | Iterable[ModelEntry], hw: HardwareProfile) -> list[FitRow]:
    """One row per model, for its :func:`best_quant` here, in the models' order (the
    model picker's list); each quant is planned once, not once more for the table."""
    rows = []
    for model in models:
        quant = best_quant(model, hw)
        if quant is not None and (row := fit_row(model, quant, hw)) is not None:
            rows.append(row)
    return rows


def _fit_key(row: FitRow) -> tuple[int, float, int, int]:
    params = params_billions(row.model) or row.quant.size_bytes / 1e9
    return (_VERDICT_RANK[row.verdict], -params, precision_rank(row.quant.quant), -row.plan.n_ctx)


def _by_precision(model: ModelEntry) -> list[QuantEntry]:
    return sorted(model.quants, key=lambda q: (precision_rank(q.quant), -q.size_bytes))


def _quant_plans(model: ModelEntry, hw: HardwareProfile) -> list[tuple[QuantEntry, Plan]]:
    """Every quant of ``model`` with its plan, most precise first."""
    plans = [(q, plan_quant(model, q, hw)) for q in _by_precision(model)]
    return [(q, p) for q, p in plans if p is not None]


def _off_gpu_quants(
    model: ModelEntry, plans: list[tuple[QuantEntry, Plan]]
) -> list[tuple[QuantEntry, Plan]]:
    """Quants no larger than the default, the default first: off the GPU every token reads
    all the weights from RAM, so a bigger quant buys precision with speed."""
    limit = model.default.size_bytes
    small = [(q, p) for q, p in plans if q.size_bytes <= limit]
    return sorted(small, key=lambda qp: qp[0].quant != model.default.quant)


def best_quant(
    model: ModelEntry, hw: HardwareProfile, *, speed_off_gpu: bool = True
) -> QuantEntry | None:
    """The most precise quant that runs fully on the GPU at the default context; else
    the most precise that fits at all. With ``speed_off_gpu`` (the default) that second
    choice is limited to quants no larger than the model's default (Q4_K_M): a Q8_0 that
    only fits half on the GPU, or on the CPU alone, runs at half the speed for a gain the
    R1 evaluations do not show. ``speed_off_gpu=False`` is the plain rule."""
    plans = _quant_plans(model, hw)
    default_ctx = _default_ctx_of(model)
    for quant, chosen in plans:
        if chosen.verdict == "gpu" and chosen.n_ctx >= default_ctx:
            return quant
    candidates = _off_gpu_quants(model, plans) if speed_off_gpu else plans
    candidates = sorted(candidates, key=lambda qp: precision_rank(qp[0].quant))
    return next((q for q, p in candidates if p.verdict != "too_big"), None)


def _default_ctx_of(model: ModelEntry) -> int:
    return min(DEFAULT_CTX, model.arch.context_length) if model.arch else DEFAULT_CTX


@dataclass(frozen=True, slots=True)
class Recommendation:
    model: ModelEntry
    quant: QuantEntry
    plan: Plan
    reason: str


def recommend(models: Catalog | Iterable[ModelEntry], hw: HardwareProfile) -> Recommendation | None:
    """The R1 distill (family ``deepseek-r1-distill``, the ``r1:<size>`` models) to suggest.

    "Usable" means a context of at least 8,192 tokens (R1 traces run 2k-8k tokens), and
    on the CPU at most 8B parameters (every token reads all the weights from RAM; 8B at
    Q4_K_M, ~5 GB, is about the most a CPU turns into a few tokens a second). In order:

    1. the largest distill with a quant that runs fully on the GPU at a usable context
       (:func:`best_quant`'s pick when it runs there at the default context, else the
       most precise quant that runs there at a usable one);
    2. the largest distill of at most 8B that fits at a usable context, in its default
       quant, else a smaller quant;
    3. the same at any context the planner allows (down to 4,096).

    None when not even that fits.
    """
    distills = [m for m in models if m.family == R1_FAMILY and m.arch is not None]
    distills.sort(key=lambda m: -(params_billions(m) or 0.0))
    small = [m for m in distills if (params_billions(m) or math.inf) <= CPU_USABLE_PARAMS_B]
    return (
        _pick(distills, hw, _on_gpu, "the largest distill that runs on the GPU")
        or _pick(small, hw, _usable_off_gpu, _CPU_REASON)
        or _pick(small, hw, _any_off_gpu, _CPU_REASON + " (with a reduced context)")
    )


USABLE_CTX = 8_192
_CPU_REASON = f"the largest distill of at most {CPU_USABLE_PARAMS_B:g}B that fits"
_Chooser = Callable[[ModelEntry, list[tuple[QuantEntry, Plan]]], tuple[QuantEntry, Plan] | None]


def _pick(
    models: list[ModelEntry], hw: HardwareProfile, choose: _Chooser, reason: str
) -> Recommendation | None:
    for model in models:
        chosen = choose(model, _quant_plans(model, hw))
        if chosen is not None:
            return Recommendation(model, chosen[0], chosen[1], reason)
    return None


def _usable(model: ModelEntry) -> int:
    return min(USABLE_CTX, _default_ctx_of(model))


def _on_gpu(
    model: ModelEntry, plans: list[tuple[QuantEntry, Plan]]
) -> tuple[QuantEntry, Plan] | None:
    on_gpu = [(q, p) for q, p in plans if p.verdict == "gpu"]
    full_ctx = [(q, p) for q, p in on_gpu if p.n_ctx >= _default_ctx_of(model)]  # best_quant's
    usable = [(q, p) for q, p in on_gpu if p.n_ctx >= _usable(model)]
    best = full_ctx or usable
    return best[0] if best else None


def _usable_off_gpu(
    model: ModelEntry, plans: list[tuple[QuantEntry, Plan]]
) -> tuple[QuantEntry, Plan] | None:
    fits = [(q, p) for q, p in _off_gpu_quants(model, plans) if p.verdict != "too_big"]
    ok = [(q, p) for q, p in fits if p.n_ctx >= _usable(model)]
    return ok[0] if ok else None


def _any_off_gpu(
    model: ModelEntry, plans: list[tuple[QuantEntry, Plan]]
) -> tuple[QuantEntry, Plan] | None:
    fits = [(q, p) for q, p in _off_gpu_quants(model, plans) if p.verdict != "too_big"]
    return fits[0] if fits else None
