"""Sampling: the one definition of every sampler option, its default and its bounds.

Each option is one field of :class:`SamplingParams`, declared with :func:`option`: its
default, its bounds, its help text, and where it may be set (a catalog entry's
recommendation, a chat's settings). Everything else is derived from these fields:
the catalog's validated ``sampling`` table, the ``ponder run`` flags and their
checks, the chat UI's settings form, what the history records with a reply. Adding
an option is one field here, plus the engine passing it to llama.cpp.

Why a dataclass with metadata rather than a pydantic model: this module sits at the
bottom of the layers and is imported by ``ponder --help``, which must stay fast;
pydantic is imported only by the catalog, which builds its model from these fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

Number = int | float


@dataclass(frozen=True, slots=True)
class Option:
    """What is known about one sampler option, besides its value."""

    name: str
    kind: type[int] | type[float]
    default: Number | None
    help: str
    label: str
    ge: Number | None = None  # value >= ge
    gt: Number | None = None  # value > gt
    le: Number | None = None  # value <= le
    catalog: bool = True  # a catalog entry may recommend a value
    per_chat: bool = True  # a chat's settings may set it (the UI's settings form shows it)
    off_note: str = ""  # what the "off" value means, for help texts

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def range_text(self) -> str:
        """The bounds for people: "0 – 2", "> 0", "at least 1"."""
        low = self.ge if self.ge is not None else self.gt
        if low is not None and self.le is not None:
            return f"{_show(low)} – {_show(self.le)}"
        if self.gt is not None:
            return f"> {_show(self.gt)}"
        if self.ge is not None:
            return f"at least {_show(self.ge)}"
        return "any whole number" if self.kind is int else "any number"

    def check(self, value: object) -> Number:
        """``value`` as this option's type, or ValueError saying what is allowed."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{self.name} must be a number, not {value!r}")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{self.name} must be a whole number, not {value}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{self.name} must be a finite number, not {value}")
        if (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
        ):
            raise ValueError(f"{self.name} {_show(value)} is out of range: {self.advice()}")
        return value

    def advice(self) -> str:
        """What to type instead of a wrong value: "use a value from 0 to 2"."""
        if self.ge is not None and self.le is not None:
            return f"use a value from {_show(self.ge)} to {_show(self.le)}"
        if self.gt is not None and self.le is not None:
            return f"use a value above {_show(self.gt)} and at most {_show(self.le)}"
        if self.ge is not None:
            return f"use at least {_show(self.ge)}"
        if self.gt is not None:
            return f"use a value above {_show(self.gt)}"
        return "use a whole number" if self.kind is int else "use a number"


def option(
    default: Number | None,
    *,
    help: str,
    label: str,
    ge: Number | None = None,
    gt: Number | None = None,
    le: Number | None = None,
    catalog: bool = True,
    per_chat: bool = True,
    off_note: str = "",
) -> Any:
    """A :class:`SamplingParams` field carrying its :class:`Option` description."""
    meta = {
        "option": {
            "default": default,
            "help": help,
            "label": label,
            "ge": ge,
            "gt": gt,
            "le": le,
            "catalog": catalog,
            "per_chat": per_chat,
            "off_note": off_note,
        }
    }
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How one reply is sampled. The defaults are DeepSeek-R1's recommendation."""

    temperature: float = option(
        0.6, ge=0.0, le=2.0, label="Temperature", help="randomness; 0 always takes the likeliest"
    )
    top_p: float = option(
        0.95, gt=0.0, le=1.0, label="Top p", help="sample from the smallest set this likely"
    )
    top_k: int = option(
        0,
        ge=0,
        label="Top k",
        help="sample from the k likeliest tokens",
        off_note="0 turns it off",
        per_chat=False,
    )
    min_p: float = option(
        0.0,
        ge=0.0,
        le=1.0,
        label="Min p",
        help="drop tokens less likely than this share of the likeliest",
        off_note="0 turns it off",
        per_chat=False,
    )
    repeat_penalty: float = option(
        1.0,
        gt=0.0,
        label="Repeat penalty",
        help="discourage repeats",
        off_note="1 turns it off",
        per_chat=False,
    )
    seed: int | None = option(
        None,
        label="Seed",
        help="random seed, for a reply that can be repeated",
        catalog=False,
        per_chat=False,
    )
    max_tokens: int | None = option(
        None,
        ge=1,
        label="Max tokens",
        help="stop after this many tokens (thinking included)",
        catalog=False,
        off_note="empty: until the model stops",
    )
    grammar: str | None = None  # GBNF text (llama.cpp's structured output)
    ignore_eos: bool = False  # keep going past end-of-generation (benchmarks), like --ignore-eos

    def with_overrides(self, overrides: Mapping[str, object]) -> SamplingParams:
        """These params with the non-None values of ``overrides`` on top."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(changes) - _FIELD_NAMES
        if unknown:
            raise ValueError(f"unknown sampling option {sorted(unknown)[0]!r}")
        return replace(self, **changes)  # type: ignore[arg-type]

    def recorded(self) -> dict[str, object]:
        """What the history keeps with a reply: every option, and whether a grammar ruled."""
        values: dict[str, object] = {o.name: getattr(self, o.name) for o in OPTIONS}
        values["grammar"] = self.grammar is not None
        return values


def _options() -> tuple[Option, ...]:
    found = []
    for f in fields(SamplingParams):
        meta = f.metadata.get("option")
        if meta is None:
            continue
        kind = int if "int" in str(f.type) else float
        found.append(Option(name=f.name, kind=kind, **meta))
    return tuple(found)


OPTIONS: tuple[Option, ...] = _options()
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
CATALOG_OPTIONS = tuple(o for o in OPTIONS if o.catalog)
CHAT_OPTIONS = tuple(o for o in OPTIONS if o.per_chat)
_FIELD_NAMES = frozenset(f.name for f in fields(SamplingParams))

# The smallest context a chat may ask for (the planner never goes below 4,096 on its own).
MIN_CTX = 512


def check_overrides(values: Mapping[str, object]) -> dict[str, Number]:
    """Non-None option values, each checked against its bounds (ValueError names it)."""
    checked: dict[str, Number] = {}
    for name, value in values.items():
        if value is None:
            continue
        opt = BY_NAME.get(name)
        if opt is None:
            raise ValueError(f"unknown sampling option {name!r}")
        checked[name] = opt.check(value)
    return checked


def _show(value: Number) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
