"""The saved chats on the left: a search box over a list, newest first."""

from __future__ import annotations

import asyncio

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, ListItem, ListView

from ponder.session import ChatSummary, SearchHit


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
        # The batch keeps the emptied list from being painted between the two steps.
        async with self._filling:
            view = self.query_one(ChatListView)
            with self.app.batch_update():
                await view.clear()
                await view.extend(items)
            for index, item in enumerate(items):
                if item.chat_id == current:
                    view.index = index
                    break
