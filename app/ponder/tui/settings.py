"""Per-chat settings: sampling, context size, system prompt, kept reasoning.

Empty fields mean "the model's recommended value" (from the catalog), so a chat keeps
following the catalog until the user sets something. Values are checked here and a
wrong one is named next to its field; nothing is saved until all are right.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, Switch, TextArea

MIN_CTX = 512


@dataclass(frozen=True)
class ChatSettings:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    n_ctx: int | None = None
    system_prompt: str | None = None
    keep_reasoning: bool = False

    def to_saved(self) -> dict[str, object]:
        """The history's settings column (the system prompt has a column of its own)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "system_prompt" and getattr(self, f.name) not in (None, False)
        }

    @classmethod
    def from_saved(cls, data: dict[str, object], system_prompt: str | None) -> ChatSettings:
        def number(key: str, kind: type) -> float | int | None:
            value = data.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return kind(value)  # type: ignore[no-any-return]
            return None

        return cls(
            temperature=number("temperature", float),
            top_p=number("top_p", float),
            max_tokens=number("max_tokens", int),  # type: ignore[arg-type]
            n_ctx=number("n_ctx", int),  # type: ignore[arg-type]
            system_prompt=system_prompt,
            keep_reasoning=data.get("keep_reasoning") is True,
        )


_FIELDS = (
    ("temperature", "Temperature", "0 – 2"),
    ("top_p", "Top p", "0 – 1"),
    ("max_tokens", "Max tokens", "empty: until the model stops"),
    ("n_ctx", "Context size", f"tokens, at least {MIN_CTX}"),
)

R1_NOTE = (
    "R1 distills were trained without a system prompt, so Ponder folds this text into "
    "your first message instead (DeepSeek's advice)."
)


class SettingsScreen(ModalScreen[ChatSettings | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(
        self, current: ChatSettings, defaults: ChatSettings, *, folds_system_prompt: bool
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.current = current
        self.defaults = defaults
        self.folds = folds_system_prompt

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog settings"):
            yield Label("Settings for this chat", classes="dialog-title")
            for name, label, hint in _FIELDS:
                value = getattr(self.current, name)
                default = getattr(self.defaults, name)
                placeholder = f"default {default}" if default is not None else hint
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    yield Input(
                        "" if value is None else str(value), placeholder=placeholder, id=name
                    )
                yield Static("", id=f"{name}-error", classes="field-error")
            with Horizontal(classes="field"):
                yield Label("Keep thinking", classes="field-label")
                yield Switch(self.current.keep_reasoning, id="keep_reasoning")
            yield Static(
                "Send earlier replies' thinking back to the model (longer prompts).",
                classes="field-note",
            )
            yield Label("System prompt")
            yield TextArea(self.current.system_prompt or "", id="system_prompt")
            if self.folds:
                yield Static(R1_NOTE, classes="field-note")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        values: dict[str, float | int | None] = {}
        ok = True
        for name, label, _hint in _FIELDS:
            text = self.query_one(f"#{name}", Input).value.strip()
            error = self.query_one(f"#{name}-error", Static)
            value, problem = _parse(name, text)
            error.update(f"{label}: {problem}" if problem else "")
            ok = ok and problem is None
            values[name] = value
        if not ok:
            return
        system = self.query_one("#system_prompt", TextArea).text.strip() or None
        self.dismiss(
            ChatSettings(
                temperature=values["temperature"],
                top_p=values["top_p"],
                max_tokens=values["max_tokens"],  # type: ignore[arg-type]
                n_ctx=values["n_ctx"],  # type: ignore[arg-type]
                system_prompt=system,
                keep_reasoning=self.query_one("#keep_reasoning", Switch).value,
            )
        )

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def _parse(name: str, text: str) -> tuple[float | int | None, str | None]:
    """The value of one field, or why it is wrong. Empty means the default."""
    if not text:
        return None, None
    try:
        value: float | int = float(text) if name in ("temperature", "top_p") else int(text)
    except ValueError:
        kind = "a number" if name in ("temperature", "top_p") else "a whole number"
        return None, f"“{text}” is not {kind}"
    if name == "temperature" and not 0 <= value <= 2:
        return None, "use a value from 0 to 2 (R1 models: 0.5 – 0.7)"
    if name == "top_p" and not 0 < value <= 1:
        return None, "use a value above 0 and at most 1"
    if name == "max_tokens" and value < 1:
        return None, "use at least 1, or leave it empty"
    if name == "n_ctx" and value < MIN_CTX:
        return None, f"use at least {MIN_CTX} tokens"
    return value, None
