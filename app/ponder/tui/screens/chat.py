"""The chat screen: saved chats on the left, the conversation, the prompt, the status.

The app tells the screen which model is loaded, or on its way in
(:class:`~ponder.tui.messages.ModelChanged`); a prompt goes to that model unless it
is being replaced. The screen keeps the status line and the chat's settings, and
decides what may happen while a reply streams; the parts do the rest: the
conversation generates and streams the reply (:mod:`.conversation`), the chat list
lists, renames and deletes chats (:mod:`.chat_list`), and :mod:`.export` writes
exports. The session writes the reply to SQLite while it streams, so the screen
never holds anything the history does not.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, LoadingIndicator

from ponder.errors import PonderError
from ponder.session import ChatSettings, History, HistoryError, LoadedModel, ReplyRequest
from ponder.tui.failures import notify_error
from ponder.tui.messages import (
    LoadModelRequested,
    ModelChanged,
    ReplyFailed,
    ReplyFinished,
    ReplyStarted,
)
from ponder.tui.screens.chat_list import ChatList, context_used
from ponder.tui.screens.conversation import Conversation
from ponder.tui.screens.export import ExportKind, export_chat
from ponder.tui.screens.settings import SettingsScreen
from ponder.tui.widgets.prompt import PromptArea
from ponder.tui.widgets.reply import ReplyView
from ponder.tui.widgets.status import StatusLine

TITLE_TICK_S = 0.5
PROGRESS_EVERY_S = 1.0  # the live title's seconds and tokens, and the status line's speed
BUSY = "Stop the reply first (Esc)."


class ChatScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+n", "new_chat", "New chat"),
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+g", "wrap_up", "Wrap up"),
        Binding("ctrl+t", "toggle_thinking", "Thinking"),
        Binding("ctrl+b", "toggle_sidebar", "Chats", show=False),
        Binding("ctrl+f", "search", "Search", show=False),
    ]

    def __init__(self, history: History, *, grammar: str | None, export_dir: Path) -> None:
        super().__init__()
        self.history = history
        self.grammar = grammar
        self.export_dir = export_dir
        self.model: LoadedModel | None = None  # as the app last told
        self.loading_model: str | None = None
        self.chat_id: int | None = None
        self.settings = ChatSettings()
        self.ctx_used = 0
        self.tokens_per_s = 0.0
        self._chats = ChatList(history, id="sidebar")
        self._conversation = Conversation(on_frame=self._frame, id="conversation")
        self._progress_at = 0.0  # when the live title and the status were last changed

    @property
    def live(self) -> ReplyView | None:
        """The reply being generated, if any."""
        return self._conversation.live

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield self._chats
            with Vertical(id="main"):
                yield self._conversation
                yield LoadingIndicator(id="loading")
                yield PromptArea(id="prompt", soft_wrap=True, show_line_numbers=False)
                yield StatusLine(id="status")
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        self.query_one("#loading").display = False
        self.query_one(PromptArea).focus()
        await self.reload_chats()
        self.refresh_status()
        self.set_interval(TITLE_TICK_S, self._tick)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Stop and wrap up exist while a reply streams; otherwise the keys fall through
        # and the Footer leaves them out.
        if action in ("stop", "wrap_up"):
            return self.live is not None
        return True

    # -- the model and the status line ---------------------------------------------

    def on_model_changed(self, message: ModelChanged) -> None:
        self.model, self.loading_model = message.model, message.loading
        self.refresh_status()

    def refresh_status(self) -> None:
        if not self.is_mounted:
            return  # on_mount shows it
        status = self.query_one(StatusLine)
        loading = self.query_one("#loading", LoadingIndicator)
        loading.display = self.loading_model is not None
        # Hidden, the indicator would still wake the loop sixteen times a second.
        loading.auto_refresh = 1 / 16 if loading.display else None
        if self.loading_model is not None:
            status.show(model=self.loading_model, state="loading…")
            return
        model, live = self.model, self.live
        state = hint = ""
        if live is not None:
            state = "thinking…" if live.thinking else "answering…"
            hint = "Ctrl+G wraps up" if live.thinking else ""
        status.show(
            model=model.name if model else None,
            placement=model.placement if model else "",
            short_placement=model.short_placement if model else "",
            ctx_used=self.ctx_used,
            ctx_size=model.n_ctx if model else 0,
            tokens_per_s=self.tokens_per_s,
            state=state,
            hint=hint,
        )

    def on_conversation_phase_changed(self, message: Conversation.PhaseChanged) -> None:
        self.refresh_status()

    def _streaming_changed(self) -> None:
        """A reply started or ended: the keys that apply change, and the prompt's cursor
        blinks only while nothing streams (a blink is a screen update, twice a second,
        and on 2 cores each one is taken from llama.cpp's threads)."""
        self.refresh_bindings()
        self.query_one(PromptArea).cursor_blink = self.live is None

    def _frame(self) -> None:
        """The live reply's new text was just shown: its title and the status line
        change in the same screen update (one repaint, not three), once a second."""
        if time.monotonic() - self._progress_at >= PROGRESS_EVERY_S:
            self._show_progress()

    def _tick(self) -> None:
        # Only when no frame did it in time: before the reply's first look (a server
        # still reading the prompt), or when frames stopped.
        if time.monotonic() - self._progress_at >= PROGRESS_EVERY_S + TITLE_TICK_S:
            self._show_progress()

    def _show_progress(self) -> None:
        self._progress_at = time.monotonic()
        if self.live is not None:
            self.live.tick()
            speed = self.live.tokens_per_s
            if speed is not None:
                self.tokens_per_s = speed
            context = self.live.context_tokens
            if context is not None:
                self.ctx_used = context
            self.refresh_status()

    # -- the chat list ---------------------------------------------------------------

    async def reload_chats(self) -> None:
        await self._chats.reload(self.chat_id)

    async def on_chat_list_chosen(self, message: ChatList.Chosen) -> None:
        await self.open_chat(message.chat_id)

    async def on_chat_list_new_chat_asked(self, message: ChatList.NewChatAsked) -> None:
        await self.action_new_chat()

    def on_chat_list_delete_asked(self, message: ChatList.DeleteAsked) -> None:
        self.delete_chat(message.chat_id, message.title)

    async def on_chat_list_deleted(self, message: ChatList.Deleted) -> None:
        if message.chat_id == self.chat_id:
            await self.action_new_chat()
        await self.reload_chats()
        self.notify(f"Deleted “{message.title}”")

    async def open_chat(self, chat_id: int) -> None:
        if self.live is not None:
            self.notify(BUSY, severity="warning")
            return
        try:
            chat = self.history.get_chat(chat_id)
        except PonderError as exc:
            notify_error(self.app, exc)
            await self.reload_chats()
            return
        self.chat_id = chat_id
        self.settings = ChatSettings.from_saved(chat.settings, chat.system_prompt)
        await self._conversation.show_saved(chat.messages)
        self.ctx_used = context_used(chat)
        self.tokens_per_s = 0.0
        self._reload_for_context()
        self.refresh_status()
        self.query_one(PromptArea).focus()

    async def action_new_chat(self) -> None:
        if self.live is not None:
            self.notify(BUSY, severity="warning")
            return
        self.chat_id = None
        self.settings = ChatSettings()
        self.ctx_used = 0
        await self._conversation.remove_children()
        await self.reload_chats()
        self.refresh_status()
        self.query_one(PromptArea).focus()

    def rename_chat(self, chat_id: int, title: str) -> None:
        self._chats.ask_rename(chat_id, title)

    def delete_chat(self, chat_id: int, title: str) -> None:
        if self.live is not None and chat_id == self.chat_id:
            self.notify(BUSY, severity="warning")
            return
        self._chats.ask_delete(chat_id, title)

    def action_search(self) -> None:
        self._chats.display = True
        self.query_one("#search", Input).focus()

    def action_toggle_sidebar(self) -> None:
        sidebar = self._chats
        sidebar.display = not sidebar.display

    # -- sending -----------------------------------------------------------------------

    @on(PromptArea.Submitted)
    async def _submitted(self, event: PromptArea.Submitted) -> None:
        if await self.send(event.text.strip()):
            self.query_one(PromptArea).clear()

    async def send(self, prompt: str) -> bool:
        """Start a reply to ``prompt``; False when it cannot start now (and why is shown)."""
        if self.live is not None:
            self.notify("A reply is still streaming; Esc stops it.", severity="warning")
            return False
        if self.loading_model:
            # A new model is on its way in; the old one takes no new reply meanwhile
            # (the session refuses it too).
            self.notify(f"{self.loading_model} is still loading…")
            return False
        model = self.model
        if model is None:
            self.notify("No model is loaded: F2 opens the model picker.", severity="warning")
            return False
        request = ReplyRequest(
            prompt=prompt,
            chat_id=self.chat_id,
            settings=self.settings,
            grammar=self.grammar,
            votes=self.settings.votes or 1,
        )
        await self._conversation.send(model, request)
        self.refresh_status()
        self._streaming_changed()
        return True

    async def on_reply_started(self, message: ReplyStarted) -> None:
        self._conversation.follow(message.reply)
        if self.chat_id is None and message.reply.chat_id is not None:
            self.chat_id = message.reply.chat_id
            await self.reload_chats()

    async def on_reply_finished(self, message: ReplyFinished) -> None:
        finished = message.finished
        await self._conversation.finish(finished)
        self._streaming_changed()
        self.tokens_per_s = finished.timings.tokens_per_s
        self.ctx_used = finished.usage.prompt_tokens + finished.usage.completion_tokens
        self.refresh_status()
        if finished.finish_reason == "interrupted":
            self.notify("Stopped; the partial reply is saved")
        await self.reload_chats()

    async def on_reply_failed(self, message: ReplyFailed) -> None:
        returned = await self._conversation.fail(message.error.message)
        prompt = self.query_one(PromptArea)
        if returned is not None and not prompt.text.strip():
            prompt.text = returned  # nothing was generated: change it and send it again
        self._streaming_changed()
        notify_error(self.app, message.error, title="The reply failed")
        self.refresh_status()

    # -- controls ------------------------------------------------------------------------

    def action_stop(self) -> None:
        self._conversation.stop()

    def action_wrap_up(self) -> None:
        if self.live is None:
            return
        if self._conversation.wrap_up():
            self.notify("Wrapping up: the model will close its thinking and answer")
        else:
            self.notify("The model is already answering.")

    def action_toggle_thinking(self) -> None:
        self._conversation.toggle_thinking()

    @on(ReplyView.RegenerateRequested)
    async def _regenerate(self, event: ReplyView.RegenerateRequested) -> None:
        replies = list(self.query(ReplyView))
        if self.live is not None or self.chat_id is None:
            self.notify("Wait for the reply to finish (or Esc) first.", severity="warning")
            return
        if not replies or event.reply is not replies[-1]:
            self.notify("Only the last reply can be regenerated.", severity="warning")
            return
        try:
            prompt = self.history.take_last_exchange(self.chat_id)
        except HistoryError as exc:
            notify_error(self.app, exc)
            return
        await self._conversation.remove_exchange(event.reply)
        await self.send(prompt)

    # -- settings and export -----------------------------------------------------------

    def action_settings(self) -> None:
        self.app.push_screen(SettingsScreen.for_chat(self.settings, self.model), self._set)

    def _set(self, settings: ChatSettings | None) -> None:
        if settings is None:
            return  # cancelled
        self.settings = settings
        if self.chat_id is not None:
            self.history.update_chat_settings(
                self.chat_id, system_prompt=settings.system_prompt, settings=settings.to_saved()
            )
        self.notify("Settings saved for this chat")
        self._reload_for_context()

    def _reload_for_context(self) -> None:
        """A chat that asks for another context size than the loaded one reloads the model."""
        model, wanted = self.model, self.settings.n_ctx
        if model is not None and wanted and wanted != model.n_ctx:
            self.app.post_message(LoadModelRequested(model.name, n_ctx=wanted))

    def export(self, kind: ExportKind) -> Path | None:
        """Write this chat to a file in the export folder; its path, or None (and why)."""
        return export_chat(self.app, self.history, self.chat_id, kind, self.export_dir)
