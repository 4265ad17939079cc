"""The command palette (Ctrl+P): actions, saved chats, installed and catalog models.

The provider needs the session (for the chats, the installed models and the
catalog) and nothing else of the app, so it asks for an app that has one
(:class:`HasSession`) instead of importing the app. Its commands ask the app for
what they want with the same messages the screens post.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.message import Message

from ponder.session import Session
from ponder.tui.messages import DownloadRequested, LoadModelRequested
from ponder.tui.screens.chat import ChatScreen


class HasSession(Protocol):
    @property
    def session(self) -> Session: ...


class PonderCommands(Provider):
    """Everything a keyboard user may want without knowing its key."""

    @property
    def session(self) -> Session:
        return cast(HasSession, self.app).session

    def _chat(self) -> ChatScreen | None:
        for screen in reversed(self.app.screen_stack):
            if isinstance(screen, ChatScreen):
                return screen
        return None

    def _ask(self, message: Callable[[], Message]) -> None:
        self.app.post_message(message())

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        session, chat, app = self.session, self._chat(), self.app
        found: list[tuple[str, Callable[[], Any], str]] = [
            ("Models: load or download", partial(app.run_action, "models"), "F2"),
            ("Settings for this chat", partial(app.run_action, "settings"), "F3"),
            ("Hardware report", partial(app.run_action, "hardware"), "F4"),
        ]
        if chat is not None:
            found += [
                ("New chat", chat.action_new_chat, "Ctrl+N"),
                ("Fold or unfold all thinking", chat.action_toggle_thinking, "Ctrl+T"),
                ("Export chat as Markdown", partial(chat.export, "md"), "to the current folder"),
                ("Export chat as JSON", partial(chat.export, "json"), "reasoning included"),
            ]
            if chat.chat_id is not None:
                found += [
                    ("Rename this chat", partial(self._rename, chat), ""),
                    ("Delete this chat", partial(self._delete, chat), "asks first"),
                ]
            for summary in chat.history.list_chats(limit=100):
                found.append(
                    (f"Open chat: {summary.title}", partial(chat.open_chat, summary.id), "")
                )
        installed = session.store.installed()
        for model in installed:
            load = partial(LoadModelRequested, model.name)
            found.append((f"Switch model: {model.name}", partial(self._ask, load), ""))
        names = {m.name.lower() for m in installed}
        for entry in session.catalog.models:
            ref = session.catalog.resolve(entry.id).display_ref  # the catalog's default quant
            if ref.lower() not in names:
                get = partial(DownloadRequested, ref)
                found.append((f"Download: {entry.name} ({ref})", partial(self._ask, get), ""))
        return found

    @staticmethod
    def _rename(chat: ChatScreen) -> None:
        assert chat.chat_id is not None
        title = chat.history.get_chat(chat.chat_id).summary.title
        chat.rename_chat(chat.chat_id, title)

    @staticmethod
    def _delete(chat: ChatScreen) -> None:
        assert chat.chat_id is not None
        title = chat.history.get_chat(chat.chat_id).summary.title
        chat.delete_chat(chat.chat_id, title)

    async def discover(self) -> Hits:
        for name, run, help_text in self._commands()[:9]:
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, run, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=help_text)
