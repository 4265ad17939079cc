"""The status line under the prompt: the model, where it runs, the context, the speed."""

from __future__ import annotations

from textual.widgets import Static


class StatusLine(Static):
    """Model, where it runs, context used / size, speed."""

    def show(
        self,
        *,
        model: str | None,
        placement: str = "",
        ctx_used: int = 0,
        ctx_size: int = 0,
        tokens_per_s: float = 0.0,
        state: str = "",
    ) -> None:
        if model is None:
            self.update(state or "no model loaded · F2 picks one", layout=False)
            return
        parts = [model]
        if placement:
            parts.append(placement)
        if ctx_size:
            parts.append(f"ctx {ctx_used:,}/{ctx_size:,}")
        if tokens_per_s:
            parts.append(f"{tokens_per_s:.1f} tok/s")
        if state:
            parts.append(state)
        self.update(" · ".join(parts), layout=False)  # one fixed line: no layout needed
