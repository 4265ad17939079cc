"""The chat screen: saved chats on the left, the conversation, the prompt, the status.

A reply is generated in a thread worker that iterates :meth:`Session.reply`; it
posts when the reply starts, finishes or fails. The text collects in the reply's
:class:`~ponder.session.Reply`'s live text, and while the reply streams the screen looks there
``STREAM_FPS`` times a second and appends whatever has arrived to the panels' two
``MarkdownStream``s. Why not a message per token: measured with bench/bench_tui.py
on 2 cores, posting each token cost the event loop 26-31 % of a core and cut the
model's speed to 0.6-0.7x of `ponder run` (the loop and the worker contend for the
CPU and the GIL), and every update re-lays out the screen. The session writes the
reply to SQLite while it streams, so the screen never holds anything the history
does not.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, ListView, LoadingIndicator

from ponder.errors import PonderError
from ponder.events import Finished
from ponder.session import ChatSettings, History, HistoryError, LoadedModel, Reply, ReplyRequest
from ponder.tui.failures import notify_error, reported
from ponder.tui.messages import (
    LoadModelRequested,
    ModelChanged,
    ReplyFailed,
    ReplyFinished,
    ReplyStarted,
)
from ponder.tui.screens.dialogs import ConfirmScreen, TextPromptScreen
from ponder.tui.screens.settings import SettingsScreen
from ponder.tui.widgets.chat_list import ChatListView, Sidebar
from ponder.tui.widgets.prompt import PromptArea
from ponder.tui.widgets.reply import ReplyView, UserTurn
from ponder.tui.widgets.status import StatusLine

TITLE_TICK_S = 0.5
STREAM_FPS = 10  # screen updates a second while a reply streams, at most
SLOWEST_UPDATE_S = 1.0  # ... and at least once a second, however busy the screen is


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
        self.live: ReplyView | None = None
        self.cancel: threading.Event | None = None
        self.wrap_up: threading.Event | None = None
        self.ctx_used = 0
        self.tokens_per_s = 0.0
        self._last_prompt = ""
        self._reply: Reply | None = None
        self._poll: Timer | None = None
        self._poll_due = 0.0
        self._frame_cost = 0.0

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield Sidebar(id="sidebar")
            with Vertical(id="main"):
                yield VerticalScroll(id="conversation")
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

    def on_unmount(self) -> None:
        # Quitting mid-reply: the worker ends after its current token and the session
        # records the partial reply as interrupted, so the app exits promptly.
        if self.cancel is not None:
            self.cancel.set()

    # -- the model and the status line ----------------------------------------------

    def on_model_changed(self, message: ModelChanged) -> None:
        self.model, self.loading_model = message.model, message.loading
        self.refresh_status()

    def refresh_status(self) -> None:
        if not self.is_mounted:
            return  # on_mount shows it
        status = self.query_one(StatusLine)
        self.query_one("#loading").display = self.loading_model is not None
        if self.loading_model is not None:
            status.show(model=self.loading_model, state="loading…")
            return
        model = self.model
        state = ""
        if self.live is not None:
            state = "thinking… (Ctrl+G wraps up)" if self.live.thinking else "answering…"
        status.show(
            model=model.name if model else None,
            placement=model.placement if model else "",
            ctx_used=self.ctx_used,
            ctx_size=model.n_ctx if model else 0,
            tokens_per_s=self.tokens_per_s,
            state=state,
        )

    def _tick(self) -> None:
        if self.live is not None:
            self.live.tick()
            elapsed = time.monotonic() - self.live.started
            tokens = self.live.reasoning_tokens + self.live.answer_tokens
            if elapsed > 0.5:
                self.tokens_per_s = tokens / elapsed
            self.refresh_status()

    # -- the chat list ------------------------------------------------------------

    async def reload_chats(self) -> None:
        sidebar = self.query_one(Sidebar)
        query = self.query_one("#search", Input).value.strip()
        history = self.history
        if query:
            await sidebar.show_hits(history.search(query, include_reasoning=True), self.chat_id)
        else:
            await sidebar.show_chats(history.list_chats(limit=200), self.chat_id)

    @on(Input.Changed, "#search")
    async def _search_changed(self) -> None:
        await self.reload_chats()

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.query_one(ChatListView).focus()

    @on(ListView.Selected, "#chats")
    async def _chat_selected(self, event: ListView.Selected) -> None:
        chat_id = getattr(event.item, "chat_id", None)
        if chat_id is not None:
            await self.open_chat(chat_id)

    async def open_chat(self, chat_id: int) -> None:
        if self.live is not None:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return
        try:
            chat = self.history.get_chat(chat_id)
        except PonderError as exc:
            notify_error(self.app, exc)
            await self.reload_chats()
            return
        self.chat_id = chat_id
        self.settings = ChatSettings.from_saved(chat.settings, chat.system_prompt)
        conversation = self.query_one("#conversation", VerticalScroll)
        await conversation.remove_children()
        widgets: list[Any] = []
        for message in chat.messages:
            if message.role == "user":
                widgets.append(UserTurn(message.content))
            else:
                widgets.append(ReplyView.from_saved(message))
        await conversation.mount_all(widgets)
        conversation.scroll_end(animate=False)
        last = chat.messages[-1] if chat.messages else None
        self.ctx_used = (
            (last.prompt_tokens or 0) + (last.reasoning_tokens or 0) + (last.answer_tokens or 0)
            if last and last.role == "assistant"
            else 0
        )
        self.tokens_per_s = 0.0
        self._reload_for_context()
        self.refresh_status()
        self.query_one(PromptArea).focus()

    async def action_new_chat(self) -> None:
        if self.live is not None:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return
        self.chat_id = None
        self.settings = ChatSettings()
        self.ctx_used = 0
        await self.query_one("#conversation", VerticalScroll).remove_children()
        await self.reload_chats()
        self.refresh_status()
        self.query_one(PromptArea).focus()

    @on(ChatListView.Action)
    async def _chat_action(self, event: ChatListView.Action) -> None:
        if event.what == "new":
            await self.action_new_chat()
        elif event.what == "rename" and event.chat_id is not None:
            self.rename_chat(event.chat_id, event.title)
        elif event.what == "delete" and event.chat_id is not None:
            self.delete_chat(event.chat_id, event.title)

    def rename_chat(self, chat_id: int, title: str) -> None:
        async def done(new_title: str | None) -> None:
            if new_title and new_title.strip():
                self.history.rename_chat(chat_id, new_title.strip())
                await self.reload_chats()

        self.app.push_screen(TextPromptScreen("Rename chat", title), done)

    def delete_chat(self, chat_id: int, title: str) -> None:
        if self.live is not None and chat_id == self.chat_id:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return

        async def done(confirmed: bool | None) -> None:
            if not confirmed:
                return
            self.history.delete_chat(chat_id)
            if chat_id == self.chat_id:
                await self.action_new_chat()
            await self.reload_chats()
            self.notify(f"Deleted “{title}”")

        self.app.push_screen(
            ConfirmScreen(f"Delete the chat “{title}” and all its messages?", "Delete"), done
        )

    def action_search(self) -> None:
        self.query_one(Sidebar).display = True
        self.query_one("#search", Input).focus()

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(Sidebar)
        sidebar.display = not sidebar.display

    # -- sending -----------------------------------------------------------------

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
        conversation = self.query_one("#conversation", VerticalScroll)
        reply = ReplyView(live=True)
        await conversation.mount_all([UserTurn(prompt), reply])
        conversation.anchor()
        self.live = reply
        self.cancel, self.wrap_up = threading.Event(), threading.Event()
        self._last_prompt = prompt
        settings = self.settings
        request = ReplyRequest(
            prompt=prompt,
            chat_id=self.chat_id,
            settings=settings,
            grammar=self.grammar,
        )
        self._generate(model, request, self.cancel, self.wrap_up)
        self.refresh_status()
        self.refresh_bindings()
        return True

    @work(thread=True, exclusive=True, group="reply", exit_on_error=False)
    def _generate(
        self,
        model: LoadedModel,
        request: ReplyRequest,
        cancel: threading.Event,
        wrap_up: threading.Event,
    ) -> None:
        with reported(self, lambda error: self.post_message(ReplyFailed(error))):
            reply = model.reply(request, cancel=cancel, wrap_up=wrap_up)
            self.post_message(ReplyStarted(reply))
            for event in reply:
                if isinstance(event, Finished):
                    self.post_message(ReplyFinished(event))

    async def on_reply_started(self, message: ReplyStarted) -> None:
        self._reply = message.reply
        self._frame_cost = 0.0
        self._schedule_update(1 / STREAM_FPS)
        if self.chat_id is None and message.reply.chat_id is not None:
            self.chat_id = message.reply.chat_id
            await self.reload_chats()

    async def _catch_up(self) -> None:
        """Show what the worker has added to the reply since the last look."""
        reply, live = self._reply, self.live
        if reply is None or live is None:
            return
        new = reply.live.look()
        was_thinking = live.thinking
        await live.add(new.reasoning, new.answer, new.reasoning_tokens, new.answer_tokens)
        if was_thinking != live.thinking:
            self.refresh_status()

    async def on_reply_finished(self, message: ReplyFinished) -> None:
        finished = message.finished
        self._stop_polling()
        await self._catch_up()
        self._reply = None
        if self.live is not None:
            await self.live.finish(finished)
        self.live = self.cancel = self.wrap_up = None
        self.refresh_bindings()
        self.tokens_per_s = finished.timings.tokens_per_s
        self.ctx_used = finished.usage.prompt_tokens + finished.usage.completion_tokens
        self.refresh_status()
        if finished.finish_reason == "interrupted":
            self.notify("Stopped; the partial reply is saved")
        await self.reload_chats()

    def _schedule_update(self, delay: float) -> None:
        self._poll_due = time.monotonic() + delay
        self._poll = self.set_timer(delay, self._update_tick)

    async def _update_tick(self) -> None:
        """Catch up with the stream, then schedule the next look.

        A screen update costs a layout of the whole screen, which grows with the
        Markdown blocks on it. How late this tick fired is how long the loop was busy
        with the last one; the next look waits at least twice that, so typing stays
        responsive however long the reply gets (at most ``STREAM_FPS`` a second).
        """
        late = max(0.0, time.monotonic() - self._poll_due)
        self._frame_cost = 0.7 * self._frame_cost + 0.3 * late
        await self._catch_up()
        if self._reply is not None:
            delay = min(SLOWEST_UPDATE_S, max(1 / STREAM_FPS, 2 * self._frame_cost))
            self._schedule_update(delay)

    def _stop_polling(self) -> None:
        if self._poll is not None:
            self._poll.stop()
            self._poll = None

    async def on_reply_failed(self, message: ReplyFailed) -> None:
        self._stop_polling()
        await self._catch_up()
        self._reply = None
        if self.live is not None:
            reply, self.live = self.live, None
            if reply.answer_text or reply.reasoning_text:
                reply.mark_failed(f"■ failed: {message.error.message}")
            else:
                # Nothing was generated: take the turn off the screen and give the
                # prompt back, so the user can change it and send it again.
                turns = list(self.query(UserTurn))
                await reply.remove()
                if turns:
                    await turns[-1].remove()
                prompt = self.query_one(PromptArea)
                if not prompt.text.strip():
                    prompt.text = self._last_prompt
        self.cancel = self.wrap_up = None
        self.refresh_bindings()
        notify_error(self.app, message.error, title="The reply failed")
        self.refresh_status()

    # -- controls ----------------------------------------------------------------

    def action_stop(self) -> None:
        if self.cancel is not None and not self.cancel.is_set():
            self.cancel.set()

    def action_wrap_up(self) -> None:
        if self.live is None or self.wrap_up is None:
            return
        if not self.live.thinking:
            self.notify("The model is already answering.")
            return
        self.wrap_up.set()
        self.notify("Wrapping up: the model will close its thinking and answer")

    def action_toggle_thinking(self) -> None:
        replies = [r for r in self.query(ReplyView) if r.reasoning_text]
        if not replies:
            return
        open_ = not any(r.reasoning_open for r in replies)
        for reply in replies:
            reply.set_reasoning_open(open_)

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
        turns = list(self.query(UserTurn))
        await event.reply.remove()
        if turns:
            await turns[-1].remove()
        await self.send(prompt)

    # -- settings and export -------------------------------------------------------

    def defaults(self) -> ChatSettings:
        """The catalog's recommended settings for the loaded model."""
        model = self.model
        return model.recommended() if model is not None else ChatSettings()

    def action_settings(self) -> None:
        folds = self.model is not None and not self.model.takes_system_prompt

        def done(result: ChatSettings | None) -> None:
            if result is None:
                return
            self.settings = result
            if self.chat_id is not None:
                self.history.update_chat_settings(
                    self.chat_id, system_prompt=result.system_prompt, settings=result.to_saved()
                )
            self.notify("Settings saved for this chat")
            self._reload_for_context()

        self.app.push_screen(
            SettingsScreen(self.settings, self.defaults(), folds_system_prompt=folds), done
        )

    def _reload_for_context(self) -> None:
        """A chat that asks for another context size than the loaded one reloads the model."""
        model, wanted = self.model, self.settings.n_ctx
        if model is not None and wanted and wanted != model.n_ctx:
            self.app.post_message(LoadModelRequested(model.name, n_ctx=wanted))

    def export(self, kind: str) -> Path | None:
        if self.chat_id is None:
            self.notify("Nothing to export yet: this chat has no messages.", severity="warning")
            return None
        history = self.history
        text = (
            history.export_markdown(self.chat_id)
            if kind == "md"
            else history.export_json(self.chat_id)
        )
        folder = self.export_dir
        path = folder / f"ponder-chat-{self.chat_id}.{kind}"
        n = 1
        while path.exists():  # never overwrite an earlier export
            n += 1
            path = folder / f"ponder-chat-{self.chat_id}-{n}.{kind}"
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            notify_error(self.app, PonderError(f"cannot write {path}: {exc.strerror}"))
            return None
        self.notify(f"Exported to {path}", title="Export")
        return path
