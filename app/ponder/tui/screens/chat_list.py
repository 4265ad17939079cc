"""The chat screen's list of saved chats, over the history.

It lists the chats (or what a search finds), and renames or deletes one after asking.
What the user picks goes to the chat screen as messages, and the screen decides: a
chat is neither switched nor deleted while its reply streams.
"""

from __future__ import annotations

from textual import on
from textual.message import Message
from textual.widgets import Input, ListView

from ponder.session import Chat, History
from ponder.tui.screens.dialogs import ConfirmScreen, TextPromptScreen
from ponder.tui.widgets.chat_list import ChatListView, Sidebar

LISTED = 200  # the most recent chats the list shows


class ChatList(Sidebar):
    """The saved chats, newest first, with the search box over them."""

    class Chosen(Message):
        def __init__(self, chat_id: int) -> None:
            super().__init__()
            self.chat_id = chat_id

    class NewChatAsked(Message):
        pass

    class DeleteAsked(Message):
        def __init__(self, chat_id: int, title: str) -> None:
            super().__init__()
            self.chat_id = chat_id
            self.title = title

    class Deleted(Message):
        """The user confirmed, and the chat is gone from the history."""

        def __init__(self, chat_id: int, title: str) -> None:
            super().__init__()
            self.chat_id = chat_id
            self.title = title

    def __init__(self, history: History, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history = history
        self.current: int | None = None  # the chat on the screen, highlighted in the list

    async def reload(self, current: int | None) -> None:
        """List the chats that match the search box (all of them when it is empty)."""
        self.current = current
        query = self.query_one("#search", Input).value.strip()
        if query:
            await self.show_hits(self.history.search(query, include_reasoning=True), current)
        else:
            await self.show_chats(self.history.list_chats(limit=LISTED), current)

    @on(Input.Changed, "#search")
    async def _search_changed(self) -> None:
        await self.reload(self.current)

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.query_one(ChatListView).focus()

    @on(ListView.Selected, "#chats")
    def _selected(self, event: ListView.Selected) -> None:
        chat_id = getattr(event.item, "chat_id", None)
        if chat_id is not None:
            self.post_message(self.Chosen(chat_id))

    @on(ChatListView.Action)
    def _action(self, event: ChatListView.Action) -> None:
        if event.what == "new":
            self.post_message(self.NewChatAsked())
        elif event.what == "rename" and event.chat_id is not None:
            self.ask_rename(event.chat_id, event.title)
        elif event.what == "delete" and event.chat_id is not None:
            self.post_message(self.DeleteAsked(event.chat_id, event.title))

    def ask_rename(self, chat_id: int, title: str) -> None:
        async def done(new_title: str | None) -> None:
            if new_title and new_title.strip():
                self.history.rename_chat(chat_id, new_title.strip())
                await self.reload(self.current)

        self.app.push_screen(TextPromptScreen("Rename chat", title), done)

    def ask_delete(self, chat_id: int, title: str) -> None:
        async def done(confirmed: bool | None) -> None:
            if confirmed:
                self.history.delete_chat(chat_id)
                self.post_message(self.Deleted(chat_id, title))

        self.app.push_screen(
            ConfirmScreen(f"Delete the chat “{title}” and all its messages?", "Delete"), done
        )


def context_used(chat: Chat) -> int:
    """The tokens the chat's last reply had in its context, 0 if it has none."""
    last = chat.messages[-1] if chat.messages else None
    if last is None or last.role != "assistant":
        return 0
    return (last.prompt_tokens or 0) + (last.reasoning_tokens or 0) + (last.answer_tokens or 0)
