"""The command palette (Ctrl+P): actions, saved chats, installed and catalog models."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from ponder.tui.app import PonderApp
    from ponder.tui.screens.chat import ChatScreen


class PonderCommands(Provider):
    """Everything a keyboard user may want without knowing its key."""

    @property
    def ponder(self) -> PonderApp:
        return cast("PonderApp", self.app)

    def _chat(self) -> ChatScreen | None:
        from ponder.tui.screens.chat import ChatScreen

        for screen in reversed(self.app.screen_stack):
            if isinstance(screen, ChatScreen):
                return screen
        return None

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        app = self.ponder
        chat = self._chat()
        found: list[tuple[str, Callable[[], Any], str]] = [
            ("Models: load or download", app.action_models, "F2"),
            ("Settings for this chat", app.action_settings, "F3"),
            ("Hardware report", app.action_hardware, "F4"),
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
            for summary in app.history.list_chats(limit=100):
                found.append(
                    (f"Open chat: {summary.title}", partial(chat.open_chat, summary.id), "")
                )
        for model in app.session.store.installed():
            found.append((f"Switch model: {model.name}", partial(app.load_model, model.name), ""))
        catalog = app.session.catalog
        installed = {m.name.lower() for m in app.session.store.installed()}
        for entry in catalog.models:
            ref = catalog.resolve(entry.id).display_ref  # the catalog's default quant
            if ref.lower() not in installed:
                found.append(
                    (f"Download: {entry.name} ({ref})", partial(app.start_download, ref), "")
                )
        return found

    @staticmethod
    def _rename(chat: ChatScreen) -> None:
        assert chat.chat_id is not None
        title = chat.ponder.history.get_chat(chat.chat_id).summary.title
        chat.rename_chat(chat.chat_id, title)

    @staticmethod
    def _delete(chat: ChatScreen) -> None:
        assert chat.chat_id is not None
        title = chat.ponder.history.get_chat(chat.chat_id).summary.title
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
