"""The thinking budget: closed at N reasoning tokens, or never opened (budget 0).

The real engine runs the R1-templated Gemma (the prompt ends inside ``<think>``, and
without a budget it would think until max_tokens); the pieces around it (the
injector, the prompt closing, the settings) are checked on their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.catalog import PromptPolicy, load_catalog
from ponder.chat_settings import ChatSettings, check_think_budget
from ponder.config import Settings
from ponder.errors import UsageError
from ponder.history import History
from ponder.paths import default_paths
from ponder.prompt import RenderedPrompt, without_thinking
from ponder.reasoning import ReasoningSplitter
from ponder.session import LiveText, ModelOptions, ReplyRequest, Session
from ponder.session.local_source import WRAP_UP_TEXT, budget_text, closing_injector

GREEDY = {"temperature": 0.0}


@pytest.fixture()
def session(ponder_home: Path) -> Iterator[Session]:
    paths = default_paths()
    with History.open(paths.history_db) as history:
        made = Session(settings=Settings(), paths=paths, catalog=load_catalog(), history=history)
        yield made
        made.close()


@pytest.mark.real_model
def test_the_budget_closes_the_thinking_and_an_answer_follows(
    session: Session, r1_gemma: Path
) -> None:
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=2048))
    # Without a budget the whole max_tokens goes to thinking: the prompt ends in <think>.
    unbounded = model.reply(
        ReplyRequest(prompt="Why is the sky blue?", overrides={**GREEDY, "max_tokens": 48})
    )
    free = unbounded.drain()
    assert free.usage.reasoning_tokens == 48 and free.usage.answer_tokens == 0
    assert free.think_budget is None and not free.budget_hit

    reply = model.reply(
        ReplyRequest(
            prompt="Why is the sky blue?",
            overrides={**GREEDY, "max_tokens": 48},
            think_budget=16,
        )
    )
    finished = reply.drain()
    assert finished.think_budget == 16 and finished.budget_hit
    assert finished.usage.reasoning_tokens == 16  # the injected close tag is not counted
    assert finished.usage.answer_tokens == 48 - 16 and reply.answer.strip()
    assert "</think>" not in reply.reasoning + reply.answer
    # The same greedy thinking, cut where the budget says.
    assert unbounded.reasoning.startswith(reply.reasoning.rstrip())
    saved = session.require_history().get_chat(reply.chat_id or 0).messages[-1]
    assert saved.params["think_budget"] == 16
    assert (saved.reasoning, saved.content) == (reply.reasoning, reply.answer)


@pytest.mark.real_model
def test_budget_zero_gives_no_reasoning_at_all(session: Session, r1_gemma: Path) -> None:
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=2048))
    reply = model.reply(
        ReplyRequest(prompt="Say hello.", overrides={**GREEDY, "max_tokens": 24}, think_budget=0)
    )
    finished = reply.drain()
    assert reply.reasoning == "" and finished.usage.reasoning_tokens == 0
    assert reply.answer.strip() and finished.usage.answer_tokens > 0
    assert finished.think_budget == 0 and finished.budget_hit


@pytest.mark.real_model
def test_a_chat_setting_budget_applies_and_a_request_overrides_it(
    session: Session, r1_gemma: Path
) -> None:
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=2048))
    settings = ChatSettings(think_budget=8)
    first = model.reply(
        ReplyRequest(prompt="Hi", overrides={**GREEDY, "max_tokens": 20}, settings=settings)
    )
    assert first.drain().usage.reasoning_tokens == 8
    # A continued chat keeps its saved setting; a request's own budget wins.
    chat = first.chat_id
    again = model.reply(ReplyRequest(prompt="More", chat_id=chat, overrides={"max_tokens": 20}))
    assert again.drain().usage.reasoning_tokens == 8
    wider = model.reply(
        ReplyRequest(prompt="More", chat_id=chat, overrides={"max_tokens": 20}, think_budget=12)
    )
    assert wider.drain().usage.reasoning_tokens == 12


@pytest.mark.real_model
def test_a_budget_with_a_grammar_is_refused_before_anything_is_saved(
    session: Session, r1_gemma: Path
) -> None:
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=2048))
    with pytest.raises(UsageError, match="grammar"):
        model.reply(ReplyRequest(prompt="Hi", grammar='root ::= "a"', think_budget=5))
    assert session.require_history().list_chats() == []
    assert not model.streaming


def test_the_injector_closes_once_at_the_budget_with_the_bridge() -> None:
    live, splitter = LiveText(), ReasoningSplitter(start_in_reasoning=True)
    inject = closing_injector(None, splitter, live, think_budget=3, bridge="Time is up.")
    assert inject is not None
    seen = []
    for _ in range(5):
        live.count(reasoning=True)
        seen.append(inject())
    assert seen == [None, None, "\n\nTime is up." + WRAP_UP_TEXT, None, None]
    assert live.wrapped_up and live.budget_hit


def test_the_injector_wraps_up_on_request_without_calling_it_the_budget() -> None:
    live, splitter = LiveText(), ReasoningSplitter(start_in_reasoning=True)
    wrap_up = threading.Event()
    inject = closing_injector(wrap_up, splitter, live, think_budget=100)
    assert inject is not None
    live.count(reasoning=True)
    assert inject() is None
    wrap_up.set()
    assert inject() == WRAP_UP_TEXT
    assert live.wrapped_up and not live.budget_hit


def test_no_injector_without_a_budget_or_a_wrap_up_event() -> None:
    splitter = ReasoningSplitter(start_in_reasoning=True)
    assert closing_injector(None, splitter, LiveText()) is None
    assert budget_text(None) == WRAP_UP_TEXT


def test_the_injector_does_nothing_once_the_model_answers() -> None:
    live, splitter = LiveText(), ReasoningSplitter(start_in_reasoning=True)
    inject = closing_injector(None, splitter, live, think_budget=1)
    assert inject is not None
    list(splitter.feed("short</think>answer"))
    live.count(reasoning=True)
    assert inject() is None and not live.budget_hit


@pytest.mark.parametrize(
    ("text", "starts", "expected"),
    [
        ("<｜Assistant｜><think>\n", True, "<｜Assistant｜><think>\n\n</think>\n\n"),
        ("<|im_start|>assistant\n", False, "<|im_start|>assistant\n<think>\n\n</think>\n\n"),
    ],
)
def test_without_thinking_closes_or_adds_an_empty_block(
    text: str, starts: bool, expected: str
) -> None:
    closed = without_thinking(RenderedPrompt(text, starts, "gguf", prefill_added=starts))
    assert closed.text == expected and not closed.starts_in_reasoning


def test_settings_keep_the_budget_and_drop_a_bad_one() -> None:
    settings = ChatSettings(think_budget=512)
    assert settings.to_saved() == {"think_budget": 512}
    assert ChatSettings.from_saved(settings.to_saved(), None).think_budget == 512
    assert ChatSettings.from_saved({"think_budget": -3}, None).think_budget is None
    assert ChatSettings.from_saved({"think_budget": True}, None).think_budget is None
    with pytest.raises(ValueError, match="0 – 1,000,000"):
        ChatSettings(think_budget=2_000_000)
    assert check_think_budget(0) == 0


def test_qwen3_carries_a_bridging_sentence_and_r1_does_not() -> None:
    catalog = load_catalog()
    qwen3, r1 = catalog.get("qwen3-8b"), catalog.get("r1-distill-qwen-7b")
    assert qwen3 is not None and r1 is not None
    assert (qwen3.prompt.budget_bridge or "").startswith("Considering the limited")
    assert r1.prompt.budget_bridge is None
    assert PromptPolicy().budget_bridge is None
