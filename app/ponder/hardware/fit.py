"""The catalog against this machine: the fit table, the best quant of a model, and the
distill to recommend, ranked by what runs here and how fast it thinks.

Each catalog entry is planned before download, from its architecture numbers
(:meth:`~ponder.hardware.facts.ModelFacts.from_catalog`); entries without them are left
out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ponder.catalog import Catalog, ModelEntry, QuantEntry
from ponder.hardware.facts import ModelFacts
from ponder.hardware.footprint import estimate
from ponder.hardware.planner import DEFAULT_CTX, Plan, Verdict, default_context, plan
from ponder.hardware.profile import HardwareProfile
from ponder.hardware.speed import USABLE_TOK_S, Speed

QUANT_PRECISION = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS")  # best first
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

    @property
    def speed(self) -> Speed | None:
        """The predicted speed; None when it does not fit."""
        return self.plan.speed if self.plan.fits else None


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


def fit_table(
    models: Catalog | Iterable[ModelEntry],
    hw: HardwareProfile,
    *,
    usable_tok_s: float = USABLE_TOK_S,
) -> list[FitRow]:
    """Every model × quant with its plan and predicted speed, the best choices here first:
    the usable rows (:func:`is_usable`: a usable context, at least ``usable_tok_s``),
    larger models first, then higher precision; then the rows that fit but are slow or
    short of context, fastest first; then the ones too big, nearest to fitting first.
    Models without architecture numbers are left out."""
    rows = [row for m in models for q in m.quants if (row := fit_row(m, q, hw)) is not None]
    return sorted(rows, key=lambda row: _fit_key(row, usable_tok_s))


def best_fit_rows(models: Catalog | Iterable[ModelEntry], hw: HardwareProfile) -> list[FitRow]:
    """One row per model, for its :func:`best_quant` here, in the models' order (the
    model picker's list); each quant is planned once, not once more for the table."""
    rows = []
    for model in models:
        quant = best_quant(model, hw)
        if quant is not None and (row := fit_row(model, quant, hw)) is not None:
            rows.append(row)
    return rows


def _fit_key(row: FitRow, usable_tok_s: float) -> tuple[int, float, int, int]:
    params = params_billions(row.model) or row.quant.size_bytes / 1e9
    precision = precision_rank(row.quant.quant)
    if is_usable(row, usable_tok_s):
        return (0, -params, precision, -row.plan.n_ctx)
    if row.plan.fits:
        return (1, -_decode(row.plan), precision, -row.plan.n_ctx)
    return (2, float(row.need_bytes), precision, 0)


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
    bigger: Recommendation | None = None  # the slower, more capable choice, when one fits


def recommend(
    models: Catalog | Iterable[ModelEntry],
    hw: HardwareProfile,
    *,
    usable_tok_s: float = USABLE_TOK_S,
) -> Recommendation | None:
    """The R1 distill (family ``deepseek-r1-distill``, the ``r1:<size>`` models) to suggest.

    The most capable distill that fits and is usable here: a context of at least 8,192
    tokens (R1 traces run 2k-8k tokens) and a predicted decode speed of at least
    ``usable_tok_s`` (a 1,500-token trace at 5 tokens/s takes five minutes). Each
    distill is planned in the quant it would run best in: the most precise that runs
    fully on the GPU at a usable context, else its default quant or a smaller one at a
    usable context, else at any context the planner allows (down to 4,096). When none is
    usable, the fastest that fits. ``bigger`` is the next larger distill that fits, for
    whoever will wait. None when not even the smallest fits.
    """
    distills = [m for m in models if m.family == R1_FAMILY and m.arch is not None]
    distills.sort(key=lambda m: -(params_billions(m) or 0.0))
    picks = [pick for m in distills if (pick := _choose(m, hw)) is not None]
    if not picks:
        return None
    usable = [p for p in picks if _is_usable(p[0], p[2], usable_tok_s)]
    if usable:
        best, reason = usable[0], _usable_reason(usable_tok_s)
    else:
        best = max(picks, key=lambda p: _decode(p[2]))
        reason = f"no distill thinks at {usable_tok_s:g} tokens/s here; this is the fastest"
    larger = [p for p in picks[: picks.index(best)] if _decode(p[2]) > 0]
    bigger = None
    if larger:
        model, quant, chosen = larger[-1]
        bigger = Recommendation(model, quant, chosen, "slower, but more capable")
    return Recommendation(best[0], best[1], best[2], reason, bigger)


USABLE_CTX = 8_192
_Pick = tuple[ModelEntry, QuantEntry, Plan]


def _usable_reason(usable_tok_s: float) -> str:
    return f"the most capable distill that fits and thinks at {usable_tok_s:g} tokens/s or more"


def _decode(chosen: Plan) -> float:
    return chosen.speed.decode_tok_s if chosen.speed is not None and chosen.fits else 0.0


def _is_usable(model: ModelEntry, chosen: Plan, usable_tok_s: float) -> bool:
    return chosen.fits and chosen.n_ctx >= _usable(model) and _decode(chosen) >= usable_tok_s


def is_usable(row: FitRow, usable_tok_s: float = USABLE_TOK_S) -> bool:
    """Fits, at a usable context (8,192 tokens or the trained context), fast enough."""
    return _is_usable(row.model, row.plan, usable_tok_s)


def _choose(model: ModelEntry, hw: HardwareProfile) -> _Pick | None:
    plans = _quant_plans(model, hw)
    for choose in (_on_gpu, _usable_off_gpu, _any_off_gpu):
        chosen = choose(model, plans)
        if chosen is not None:
            return model, chosen[0], chosen[1]
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
