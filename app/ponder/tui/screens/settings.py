"""Per-chat settings: sampling, context size, thinking budget, system prompt, kept reasoning.

Empty fields mean "the model's recommended value" (from the catalog), so a chat keeps
following the catalog until the user sets something. Values are checked here and a
wrong one is named next to its field; nothing is saved until all are right.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, Switch, TextArea

from ponder.chat_settings import MAX_THINK_BUDGET, MAX_VOTES
from ponder.sampling import CHAT_OPTIONS, MIN_CTX, Number
from ponder.session import ChatSettings, LoadedModel

CTX_FIELD = "n_ctx"
BUDGET_FIELD = "think_budget"
VOTES_FIELD = "votes"


def _fields() -> list[tuple[str, str, str]]:
    """(id, label, hint) of each number field: the chat's sampling options, then the context."""
    rows = [(o.name, o.label, o.off_note or o.range_text) for o in CHAT_OPTIONS]
    rows.append((CTX_FIELD, "Context size", f"tokens, at least {MIN_CTX}"))
    rows.append((BUDGET_FIELD, "Thinking budget", "tokens; empty: none, 0: no thinking"))
    rows.append((VOTES_FIELD, "Votes", f"2 – {MAX_VOTES} answers; empty: one"))
    return rows


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

    @classmethod
    def for_chat(cls, current: ChatSettings, model: LoadedModel | None) -> SettingsScreen:
        """The form for a chat's ``current`` settings; empty fields show the loaded
        model's recommended values (the catalog's)."""
        if model is None:
            return cls(current, ChatSettings(), folds_system_prompt=False)
        return cls(current, model.recommended(), folds_system_prompt=not model.takes_system_prompt)

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog settings"):
            yield Label("Settings for this chat", classes="dialog-title")
            for name, label, hint in _fields():
                value = _value(self.current, name)
                default = _value(self.defaults, name)
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
        values: dict[str, Number] = {}
        ok = True
        for name, label, _hint in _fields():
            text = self.query_one(f"#{name}", Input).value.strip()
            error = self.query_one(f"#{name}-error", Static)
            value, problem = _parse(name, text)
            error.update(f"{label}: {problem}" if problem else "")
            ok = ok and problem is None
            if value is not None:
                values[name] = value
        if not ok:
            return
        system = self.query_one("#system_prompt", TextArea).text.strip() or None
        n_ctx = values.pop(CTX_FIELD, None)
        budget = values.pop(BUDGET_FIELD, None)
        votes = values.pop(VOTES_FIELD, None)
        self.dismiss(
            ChatSettings(
                sampling=values,
                n_ctx=int(n_ctx) if n_ctx is not None else None,
                think_budget=int(budget) if budget is not None else None,
                votes=int(votes) if votes is not None else None,
                system_prompt=system,
                keep_reasoning=self.query_one("#keep_reasoning", Switch).value,
            )
        )

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


# The whole-number fields that are not sampling options: their lowest and highest values.
LIMITS: dict[str, tuple[int, int | None]] = {
    CTX_FIELD: (MIN_CTX, None),
    BUDGET_FIELD: (0, MAX_THINK_BUDGET),
    VOTES_FIELD: (2, MAX_VOTES),
}


def _value(settings: ChatSettings, name: str) -> Number | None:
    if name == BUDGET_FIELD:
        return settings.think_budget
    if name == VOTES_FIELD:
        return settings.votes
    return settings.n_ctx if name == CTX_FIELD else settings.get(name)


def _parse(name: str, text: str) -> tuple[Number | None, str | None]:
    """The value of one field, or why it is wrong. Empty means the default."""
    if not text:
        return None, None
    if name in LIMITS:
        if not text.isdigit():
            return None, f"“{text}” is not a whole number"
        low, high = LIMITS[name]
        if int(text) < low:
            return None, f"use at least {low}"
        if high is not None and int(text) > high:
            return None, f"use at most {high:,}"
        return int(text), None
    option = next(o for o in CHAT_OPTIONS if o.name == name)
    try:
        number: Number = int(text) if option.kind is int else float(text)
    except ValueError:
        kind = "a whole number" if option.kind is int else "a number"
        return None, f"“{text}” is not {kind}"
    try:
        return option.check(number), None
    except ValueError:
        return None, option.advice()
