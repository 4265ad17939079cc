"""Tests of the incremental <think> splitter: tables, chunk invariance, speed."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.events import AnswerDelta, ReasoningDelta
from ponder.reasoning import ReasoningSplitter, split_reasoning, strip_reasoning

Deltas = list[ReasoningDelta | AnswerDelta]


def run(chunks: list[str], *, start_in_reasoning: bool = False) -> tuple[str, str, Deltas]:
    """Feed the chunks, flush, and return (reasoning, answer, all deltas)."""
    splitter = ReasoningSplitter(start_in_reasoning=start_in_reasoning)
    deltas: Deltas = []
    for chunk in chunks:
        deltas.extend(splitter.feed(chunk))
    deltas.extend(splitter.flush())
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    answer = "".join(d.text for d in deltas if isinstance(d, AnswerDelta))
    return reasoning, answer, deltas


# (name, chunks, start_in_reasoning, expected reasoning, expected answer)
CASES: list[tuple[str, list[str], bool, str, str]] = [
    (
        "prefilled, only the close tag",
        ["Let me", " think.\n", "</think>", "\n\n", "42"],
        True,
        "Let me think.",
        "42",
    ),
    (
        "model opens and closes the block",
        ["<think>", "\nhmm\n", "</think>", "\n\nThe answer."],
        False,
        "hmm",
        "The answer.",
    ),
    ("open tag after leading whitespace", ["\n  ", "<think>x</think>y"], False, "x", "y"),
    ("open tag split across chunks", ["<th", "in", "k>x</thi", "nk>y"], False, "x", "y"),
    ("prefilled, redundant open tag swallowed", [" <think>\nx</think>y"], True, "x", "y"),
    ("prefilled, second open tag is text", ["<think><think>x</think>y"], True, "<think>x", "y"),
    ("never closes", ["<think>", "still thinking", " ..."], False, "still thinking ...", ""),
    ("prefilled, never closes", ["a", " b", "\n\n"], True, "a b", ""),
    ("no thinking at all", ["Hello", " world"], False, "", "Hello world"),
    ("no thinking, leading whitespace dropped", ["\n\n", "Hi"], False, "", "Hi"),
    (
        "open tag mid-answer is text",
        ["Use <think>", " x</think>"],
        False,
        "",
        "Use <think> x</think>",
    ),
    (
        "tags after the close are text",
        ["r</think>a<think>b</think>"],
        True,
        "r",
        "a<think>b</think>",
    ),
    ("newlines after the close dropped", ["r</think>", "\n", "\n", "a\n\nb"], True, "r", "a\n\nb"),
    ("whitespace before the close dropped", ["r", " \n", "\n", "</think>a"], True, "r", "a"),
    ("inner whitespace kept", ["a", "\n\n", "b</think>x"], True, "a\n\nb", "x"),
    ("lone '<' at end of stream", ["<think>x", "<"], False, "x<", ""),
    ("'<' at end of answer", ["a", "<"], False, "", "a<"),
    ("'</' then not a tag", ["a</", "b"], True, "a</b", ""),
    ("partial close tag at end", ["a </thi"], True, "a </thi", ""),
    ("partial open tag only", ["<thi"], False, "", "<thi"),
    ("partial open tag only, prefilled", ["<thi"], True, "<thi", ""),
    ("empty reasoning", ["<think>\n\n</think>\n\nA"], False, "", "A"),
    ("empty stream", [], False, "", ""),
    ("whitespace-only stream", [" ", "\n"], True, "", ""),
    ("repeated '<' before close", ["a<<", "</think>b"], True, "a<<", "b"),
    ("non-ascii", ["é</th", "ink>ü"], True, "é", "ü"),
]


@pytest.mark.parametrize(
    ("chunks", "start", "reasoning", "answer"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_table(chunks: list[str], start: bool, reasoning: str, answer: str) -> None:
    got_reasoning, got_answer, deltas = run(chunks, start_in_reasoning=start)
    assert (got_reasoning, got_answer) == (reasoning, answer)
    assert all(d.text for d in deltas), "empty delta emitted"
    assert split_reasoning("".join(chunks), start_in_reasoning=start) == (reasoning, answer)


@pytest.mark.parametrize("start", [True, False])
def test_close_tag_split_at_every_boundary(start: bool) -> None:
    text = ("<think>" if not start else "") + "a b\n</think>\n\nanswer"
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            reasoning, answer, _ = run([text[:i], text[i:j], text[j:]], start_in_reasoning=start)
            assert (reasoning, answer) == ("a b", "answer"), (i, j)


def test_one_character_at_a_time_releases_early() -> None:
    """Only what might still be a tag (or trailing whitespace) is held back."""
    splitter = ReasoningSplitter(start_in_reasoning=True)
    assert splitter.feed("ab") == [ReasoningDelta("ab")]
    assert splitter.feed("<") == []
    assert splitter.feed("/") == []
    assert splitter.feed("x") == [ReasoningDelta("</x")]
    assert splitter.feed(" ") == []
    assert splitter.feed("y") == [ReasoningDelta(" y")]
    assert splitter.feed("</think") == []
    assert splitter.in_reasoning and not splitter.saw_close_tag
    assert splitter.feed(">") == []
    assert not splitter.in_reasoning and splitter.saw_close_tag
    assert splitter.feed("\n\n") == []
    assert splitter.feed("z") == [AnswerDelta("z")]
    assert splitter.feed(" <") == [AnswerDelta(" <")]
    assert splitter.flush() == []


def test_one_feed_gives_reasoning_then_answer() -> None:
    splitter = ReasoningSplitter()
    assert splitter.feed("<think>r</think>a") == [ReasoningDelta("r"), AnswerDelta("a")]


def test_in_reasoning_during_undecided_start() -> None:
    prefilled = ReasoningSplitter(start_in_reasoning=True)
    plain = ReasoningSplitter()
    assert prefilled.in_reasoning and not plain.in_reasoning
    assert plain.feed("<th") == []
    assert not plain.in_reasoning
    assert plain.feed("ink>") == []
    assert plain.in_reasoning


def test_close_reasoning_mid_trace() -> None:
    splitter = ReasoningSplitter(start_in_reasoning=True)
    assert splitter.feed("thinking \n</th") == [ReasoningDelta("thinking")]
    assert splitter.close_reasoning() == [ReasoningDelta(" \n</th")]
    assert not splitter.in_reasoning and not splitter.saw_close_tag
    assert splitter.feed("\nFinal answer. </think>") == [AnswerDelta("Final answer. </think>")]
    assert splitter.close_reasoning() == []
    assert splitter.flush() == []


def test_close_reasoning_drops_trailing_whitespace_and_is_noop_without_thinking() -> None:
    splitter = ReasoningSplitter(start_in_reasoning=True)
    assert splitter.feed("x\n\n") == [ReasoningDelta("x")]
    assert splitter.close_reasoning() == []
    assert splitter.feed("y") == [AnswerDelta("y")]
    plain = ReasoningSplitter()
    assert plain.close_reasoning() == []
    assert plain.feed("hi") == [AnswerDelta("hi")]


def test_close_reasoning_during_undecided_prefilled_start() -> None:
    splitter = ReasoningSplitter(start_in_reasoning=True)
    assert splitter.feed(" <thi") == []
    assert splitter.close_reasoning() == [ReasoningDelta("<thi")]
    assert splitter.feed("nk>") == [AnswerDelta("nk>")]


def test_custom_tags() -> None:
    splitter = ReasoningSplitter(open_tag="<|thought|>", close_tag="<|/thought|>")
    deltas = splitter.feed("<|thought|>x<|/tho") + splitter.feed("ught|>y")
    assert deltas == [ReasoningDelta("x"), AnswerDelta("y")]


@pytest.mark.parametrize("tag", ["", " <think>", "</think>\n"])
def test_bad_tags_rejected(tag: str) -> None:
    with pytest.raises(ValueError, match="think tag"):
        ReasoningSplitter(close_tag=tag)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>\nx\n</think>\n\nAnswer", "Answer"),
        ("x\n</think>\n\nAnswer", "Answer"),
        ("Answer only", "Answer only"),
        ("  Answer", "Answer"),
        ("a</think>b</think>c", "b</think>c"),
        ("r</think>\n<think>again</think>\nAnswer", "Answer"),
        ("<think>unclosed trace", ""),
        ("Use <think> tags", "Use <think> tags"),
    ],
)
def test_strip_reasoning(text: str, expected: str) -> None:
    assert strip_reasoning(text) == expected


PIECES = ["<think>", "</think>", "<", "</", "think", ">", "a", " ", "\n", "é", "</thi", "<th"]
texts = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=30).map("".join),
    st.text(max_size=40),
)


@st.composite
def cut(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A text and one way of cutting it into chunks (empty chunks allowed)."""
    text = draw(texts)
    points = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *points, len(text)]
    return text, [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=400, deadline=None)
@given(cut(), st.booleans())
def test_chunking_never_changes_the_result(case: tuple[str, list[str]], start: bool) -> None:
    text, chunks = case
    reasoning, answer, deltas = run(chunks, start_in_reasoning=start)
    assert (reasoning, answer) == split_reasoning(text, start_in_reasoning=start)
    assert all(d.text for d in deltas)
    kinds = [type(d) for d in deltas]
    assert kinds == sorted(kinds, key=lambda k: k is AnswerDelta), "reasoning after answer"


@settings(max_examples=200, deadline=None)
@given(texts, st.booleans())
def test_split_properties(text: str, start: bool) -> None:
    reasoning, answer = split_reasoning(text, start_in_reasoning=start)
    assert reasoning == reasoning.strip()
    assert answer == answer.lstrip()
    assert len(reasoning) + len(answer) <= len(text)
    if not start and not text.lstrip().startswith("<think>"):
        assert (reasoning, answer) == ("", text.lstrip())


def _feed_time(chunks: list[str], *, start: bool) -> float:
    splitter = ReasoningSplitter(start_in_reasoning=start)
    t0 = time.perf_counter()
    for chunk in chunks:
        splitter.feed(chunk)
    splitter.flush()
    return time.perf_counter() - t0


@pytest.mark.parametrize("token", [" word", "\n", "<"])
def test_feed_cost_is_linear(token: str) -> None:
    """Ten times the tokens takes about ten times as long, not a hundred."""
    small = _feed_time([token] * 2_000, start=True)
    large = _feed_time([token] * 20_000, start=True)
    assert large < 40 * small + 0.05
