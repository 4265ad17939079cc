"""A saved chat's turns as they go back to the model in its next reply.

Apart from :mod:`.loaded` because two things must agree on it: the reply that reads a
chat's history, and the save after a reply, which predicts how the next prompt will
begin (:mod:`.continuation`).
"""

from __future__ import annotations

from ponder.chat_settings import ChatSettings
from ponder.history import History
from ponder.prompt import Turn


def chat_turns(
    history: History, chat_id: int, *, keep_reasoning: bool | None = None
) -> tuple[list[Turn], str | None, ChatSettings]:
    """Earlier turns of a saved chat, its system prompt and its settings.

    Answers only, unless reasoning is kept (``keep_reasoning``, or else the chat's own
    setting): then each answer goes back with its thinking in ``<think>`` tags (a
    template may still drop it; R1's own does).
    """
    chat = history.get_chat(chat_id)
    settings = ChatSettings.from_saved(chat.settings, chat.system_prompt)
    keep = settings.keep_reasoning if keep_reasoning is None else keep_reasoning
    turns: list[Turn] = []
    for m in chat.messages:
        if m.role == "user":
            turns.append(Turn("user", m.content))
        elif m.content.strip():
            text = history_text(m.content, m.reasoning, keep_reasoning=keep)
            turns.append(Turn("assistant", text))
    return turns, chat.system_prompt, settings


def history_text(answer: str, reasoning: str, *, keep_reasoning: bool) -> str:
    """A reply as it goes back to the model in a later turn: the answer, with its
    thinking in ``<think>`` tags when reasoning is kept."""
    if keep_reasoning and reasoning.strip():
        return f"<think>\n{reasoning.strip()}\n</think>\n\n{answer}"
    return answer
