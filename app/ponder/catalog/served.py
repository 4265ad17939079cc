"""Models the catalog knows but that run only on a server: ``[[served]]`` tables.

The full DeepSeek-R1 and R1-0528 are 671B-parameter mixtures of experts (37B active per
token). No laptop holds them, so the catalog does not offer a download; it says what
serving them takes (each :class:`ServingOption`: a precision, the weights' size, the
hardware that holds them, the engines that serve it) and how the model wants to be
prompted and sampled, which a remote running it then follows. ``ponder fit r1:671b``
prints the options; ``ponder run r1:671b`` without a remote that serves it explains how
to serve it and point Ponder at it.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ponder.catalog.schema import _ALIAS_PATTERN, _ID_PATTERN, PromptPolicy, Sampling

_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True)


class ServingOption(BaseModel):
    """One way to serve the model: a precision and what holds it."""

    model_config = _CONFIG

    precision: str = Field(min_length=1, max_length=80, description="e.g. FP8 (native)")
    weights_gb: float = Field(gt=0, le=100_000, description="size of the weights, decimal GB")
    hardware: list[str] = Field(min_length=1, description="setups that hold it")
    engines: list[str] = Field(min_length=1, description="servers that serve it this way")
    source: str | None = Field(default=None, description="the repo the weights come from")


class ServedEntry(BaseModel):
    """A model served only by remote engines."""

    model_config = _CONFIG

    id: str = Field(pattern=_ID_PATTERN, description="stable id, e.g. deepseek-r1")
    name: str = Field(min_length=1)
    family: str = Field(default="custom", min_length=1)
    params: str | None = Field(default=None, description="total parameters, e.g. 671B")
    active_params: str | None = Field(default=None, description="per token, for a MoE")
    context_length: int | None = Field(default=None, gt=0, le=10_000_000)
    aliases: list[str] = Field(default_factory=list)
    license: str | None = None
    upstream: str = Field(min_length=3, description="the model's own repo: what servers call it")
    sampling: Sampling = Field(default_factory=Sampling)
    prompt: PromptPolicy = Field(default_factory=PromptPolicy)
    serving: list[ServingOption] = Field(min_length=1)

    @field_validator("aliases")
    @classmethod
    def _valid_aliases(cls, aliases: list[str]) -> list[str]:
        for alias in aliases:
            if not re.match(_ALIAS_PATTERN, alias):
                raise ValueError(f"alias '{alias}' must be lower-case letters, digits, '.:_-'")
        return aliases

    @property
    def short_name(self) -> str:
        return self.aliases[0] if self.aliases else self.id

    def matches(self, ref: str) -> bool:
        """True when ``ref`` is this entry's id or one of its aliases (case-insensitive)."""
        key = ref.strip().lower().partition("@")[0]
        return key == self.id or key in self.aliases

    def how_to_serve(self) -> list[str]:
        """Lines for ``ponder fit``: each way to serve it."""
        moe = f", {self.active_params} active per token" if self.active_params else ""
        lines = [f"{self.short_name} ({self.name}, {self.params or '?'} parameters{moe})"]
        lines.append("runs on a server, not on this machine; ways to serve it:")
        for option in self.serving:
            lines.append(
                f"  {option.precision}: about {option.weights_gb:,.0f} GB of weights; "
                f"{' or '.join(option.hardware)}; with {', '.join(option.engines)}"
            )
        return lines
