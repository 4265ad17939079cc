"""``ponder fit --json``: the fit table and one model's plan as JSON-ready objects.

For scripts that pick a model: each row's plan, memory and predicted speed
(``decode_tok_s``, ``prompt_tok_s``), and how fast this machine reads memory, which the
speeds come from. The keys are an API: add, never rename.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ponder.hardware.fit import FitRow, is_usable
from ponder.hardware.planner import Plan
from ponder.hardware.profile import HardwareProfile
from ponder.hardware.speed import REPLY_TOKENS, device_spec, ram_bandwidth

SCHEMA = 1


def _rate(value: float) -> float:
    return round(value, 2)


def plan_data(p: Plan) -> dict[str, Any]:
    """A plan with its memory per device and its predicted speed (None when it does not fit)."""
    speed = p.speed if p.fits else None
    return {
        "verdict": p.verdict,
        "fits": p.fits,
        "n_ctx": p.n_ctx,
        "n_gpu_layers": p.n_gpu_layers,
        "n_layers_total": p.n_layers_total,
        "n_threads": p.n_threads,
        "use_mmap": p.use_mmap,
        "flash_attn": p.flash_attn,
        "memory": [
            {
                "device": d.device,
                "weights_bytes": d.weights,
                "kv_bytes": d.kv,
                "compute_bytes": d.compute,
                "margin_bytes": d.margin,
                "free_bytes": d.budget,
            }
            for d in p.estimate.devices
        ],
        "decode_tok_s": _rate(speed.decode_tok_s) if speed else None,
        "decode_full_context_tok_s": _rate(speed.decode_full_tok_s) if speed else None,
        "prompt_tok_s": _rate(speed.prompt_tok_s) if speed else None,
        "reply_tokens": REPLY_TOKENS,
        "reply_s": round(speed.reply_s(), 1) if speed else None,
        "speed_guessed": speed.guessed if speed else None,
        "notes": list(p.notes),
        "warnings": list(p.warnings),
    }


def row_data(row: FitRow, usable_tok_s: float) -> dict[str, Any]:
    """One fit-table row: the catalog entry, its plan and its speed."""
    return {
        "model": row.model.short_name,
        "name": row.model.name,
        "quant": row.quant.quant,
        "size_bytes": row.quant.size_bytes,
        "need_bytes": row.need_bytes,
        "usable": is_usable(row, usable_tok_s),
        **plan_data(row.plan),
    }


def speed_basis(hw: HardwareProfile, usable_tok_s: float) -> dict[str, Any]:
    """What the speeds rest on: the memory bandwidths, and the usable speed."""
    ram, measured = ram_bandwidth(hw, hw.performance_cores)
    gpus = []
    for device in hw.offload_devices:
        spec = device_spec(device, hw)
        gpus.append(
            {"device": device.name, "bandwidth_bytes_per_s": spec.bandwidth, "known": spec.known}
        )
    return {
        "ram_bandwidth_bytes_per_s": round(ram),
        "ram_bandwidth_measured": measured,
        "threads": hw.performance_cores,
        "gpus": gpus,
        "usable_tok_s": usable_tok_s,
    }


def fit_data(
    rows: Sequence[FitRow], hw: HardwareProfile, usable_tok_s: float, served: Sequence[str] = ()
) -> dict[str, Any]:
    """``ponder fit --json``: every row, best first, and what the speeds rest on."""
    return {
        "schema": SCHEMA,
        "machine": speed_basis(hw, usable_tok_s),
        "rows": [row_data(row, usable_tok_s) for row in rows],
        "served_only": list(served),
    }
