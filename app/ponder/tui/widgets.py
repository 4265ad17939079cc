"""Small widgets of the chat screen: the prompt box, the chat list, the status line."""

from __future__ import annotations

import asyncio

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, ListItem, ListView, Static, TextArea

from ponder.history import ChatSummary, SearchHit


class PromptArea(TextArea):
    """The prompt box: Enter sends, Shift+Enter or Ctrl+J starts a new line."""

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            if self.text.strip():
                self.post_message(self.Submitted(self.text))
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)


class ChatItem(ListItem):
    def __init__(self, chat_id: int, title: str, detail: str = "") -> None:
        label = Label(title, markup=False, classes="chat-title")
        children = [label]
        if detail:
            children.append(Label(detail, markup=False, classes="chat-detail"))
        super().__init__(*children)
        self.chat_id = chat_id
        self.title = title


class ChatListView(ListView):
    """Saved chats, newest first. Keys act on the highlighted chat."""

    BINDINGS = [
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
        Binding("n", "new", "New chat"),
    ]

    class Action(Message):
        def __init__(self, what: str, chat_id: int | None, title: str = "") -> None:
            super().__init__()
            self.what = what
            self.chat_id = chat_id
            self.title = title

    def _send(self, what: str) -> None:
        item = self.highlighted_child
        if isinstance(item, ChatItem):
            self.post_message(self.Action(what, item.chat_id, item.title))
        elif what == "new":
            self.post_message(self.Action(what, None))

    def action_rename(self) -> None:
        self._send("rename")

    def action_delete(self) -> None:
        self._send("delete")

    def action_new(self) -> None:
        self.post_message(self.Action("new", None))


class Sidebar(Vertical):
    """A search box over the chat list."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._filling = asyncio.Lock()

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search chats", id="search")
        yield ChatListView(id="chats")

    async def show_chats(self, chats: list[ChatSummary], current: int | None) -> None:
        await self._fill([ChatItem(c.id, c.title) for c in chats], current)

    async def show_hits(self, hits: list[SearchHit], current: int | None) -> None:
        seen: set[int] = set()
        items = []
        for hit in hits:
            if hit.chat_id in seen:
                continue
            seen.add(hit.chat_id)
            snippet = " ".join(hit.snippet.split())
            items.append(ChatItem(hit.chat_id, hit.chat_title, snippet))
        await self._fill(items, current)

    async def _fill(self, items: list[ChatItem], current: int | None) -> None:
        # Clearing and filling are awaited, one refill at a time, so two quick reloads
        # (a reply starting and finishing) cannot interleave into a doubled list.
        async with self._filling:
            view = self.query_one(ChatListView)
            await view.clear()
            await view.extend(items)
            for index, item in enumerate(items):
                if item.chat_id == current:
                    view.index = index
                    break


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
