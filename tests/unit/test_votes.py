r"""Tests of self-consistency votes: answer extraction over R1-style answers, normalisation,
and the tally (majority, ties by finish order, no answers, bad finish orders)."""

from __future__ import annotations

from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.votes import Tally, extract_answer, normalize, tally

# Answers as R1 distills write them after </think>: a worked solution, then the result.
JANET = r"""To determine how much Janet makes every day at the farmers' market, follow these steps:

1. **Calculate the total number of eggs laid per day:**
   \[
   16 \text{ eggs/day}
   \]

2. **Subtract the eggs Janet uses:**
   \[
   16 - 3 - 4 = 9 \text{ eggs}
   \]

3. **Calculate the daily earnings:**
   \[
   9 \text{ eggs} \times \$2/\text{egg} = \$18
   \]

**Final Answer:**
\[
\boxed{18}
\]"""

HALF = r"""The probability of drawing a red marble is the number of red marbles over the total:

$$P = \frac{5}{10} = \frac{1}{2}$$

So the probability is \(\boxed{\dfrac{1}{2}}\)."""

TWO_BOXES = r"""First I got \(\boxed{40}\), but that counted the corner twice.

Correcting for it, there are \(40 - 1 = 39\) squares.

**Answer:** \(\boxed{39}\)"""

CUT_OFF = r"""So the sum is \(\boxed{12}\).

Double-checking with the formula: \(\boxed{\frac{n(n+1)"""

NO_BOX_PHRASE = """Adding the two groups gives 17 + 25.

The answer is 42."""

BOLD_PHRASE = """We compare both options and the second is cheaper.

**Answer:** 1,250 dollars"""

FINAL_ANSWER_LATEX = r"""Solving \(2x - 1 = 5\) gives \(2x = 6\).

Final answer: $x = 3$"""

LAST_NUMBER = """The train covers 60 km in the first hour and 45 km in the second.
So in total it travels 105 km."""

NO_ANSWER = """I'm sorry, but the question seems to be missing some information that I need.
Could you tell me the full problem statement, including the values involved?"""

CASES: list[tuple[str, str, str | None]] = [
    ("multi-paragraph, boxed in display math at the end", JANET, "18"),
    ("boxed dfrac inside inline math", HALF, "1/2"),
    ("several boxes, the last wins", TWO_BOXES, "39"),
    ("an unclosed last box is skipped", CUT_OFF, "12"),
    ("nested braces", r"Thus the polynomial is \(\boxed{x^{2}+1}\).", "x^2+1"),
    ("nested frac", r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{3}}{2}"),
    ("frac reduced", r"The ratio is \(\boxed{\frac{6}{8}}\).", "3/4"),
    ("frac over one is an integer", r"\boxed{\frac{6}{3}}", "2"),
    ("boxed with a space", r"Answer: \boxed {7}", "7"),
    ("fbox", r"\fbox{-5}", "-5"),
    ("boxed text", r"\(\boxed{\text{(B)}}\)", "b"),
    ("boxed units", r"\(\boxed{18 \text{ dollars}}\)", "18"),
    ("boxed degrees", r"\(\boxed{90^\circ}\)", "90"),
    ("boxed thousands", r"\(\boxed{1{,}000}\)", "1000"),
    ("boxed assignment", r"\(\boxed{x = 3}\)", "3"),
    ("boxed two roots stay whole", r"\(\boxed{x = 2 \text{ or } x = 3}\)", "x=2 or x=3"),
    ("boxed interval", r"\(\boxed{\left( -\infty, 2 \right]}\)", r"(-\infty, 2]"),
    ("a cut-off box after a phrase is no answer", "It is 5.\nThe answer is \\boxed{7", "5"),
    ("a box made of a repeated cut-off box", "\\boxed{\\frac{1}{2" * 2000 + "\n\\boxed{7}", "7"),
    ("empty box skipped", "So \\(\\boxed{4}\\). Then \\(\\boxed{}\\)", "4"),
    ("the answer is 42.", NO_BOX_PHRASE, "42"),
    ("bold answer with separators and units", BOLD_PHRASE, "1250"),
    ("final answer with an assignment", FINAL_ANSWER_LATEX, "3"),
    ("answer phrase then reasons", "The answer is 12, since 5 + 7 = 12.", "12"),
    ("answer on the next line", "**Final Answer**:\n\n$\\frac{3}{4}$", "3/4"),
    ("multiple choice", "After eliminating A and C, the answer is (B).", "b"),
    ("a judgement is not an answer", "So 7 * 6 = 42.\nI checked: the answer is correct.", "42"),
    ("last number of the final line", LAST_NUMBER, "105"),
    ("number with separators", "The city has 1,234,567 people.", "1234567"),
    ("space separators", "Total:\n1 000", "1000"),
    ("decimal trailing zero", "It costs $3.50 in total.", "3.5"),
    ("percent kept", "The discount works out to 50%.", "50%"),
    ("latex fraction in prose", r"So the chance is \(\frac{2}{4}\).", "1/2"),
    ("plain fraction", "Therefore the slope is 2/4", "1/2"),
    ("negative number", "The minimum value is -7.", "-7"),
    ("not an exponent", r"Hence the area grows as \(r^2\) times 4", "4"),
    ("display math closing line is skipped", "Hence\n\\[\n\\frac{3}{4}\n\\]", "3/4"),
    ("short final line", "Is the number prime?\n\n**Yes.**", "yes"),
    ("no answer at all", NO_ANSWER, None),
    ("empty", "", None),
    ("whitespace", " \n\t\n", None),
]


@pytest.mark.parametrize(("answer", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_extract_answer(answer: str, expected: str | None) -> None:
    assert extract_answer(answer) == expected


NORMALIZE: list[tuple[str, str]] = [
    ("  42  ", "42"),
    ("42.", "42"),
    ("42!;", "42"),
    ("**42**", "42"),
    ("`42`", "42"),
    ("$42$", "42"),
    (r"\(42\)", "42"),
    (r"\[ 42 \]", "42"),
    ("1,000", "1000"),
    ("1 000", "1000"),
    (r"1\,000", "1000"),
    ("-1,000.50", "-1000.5"),
    ("3.50", "3.5"),
    ("2.0", "2"),
    ("007", "7"),
    (".5", "0.5"),
    ("-0", "0"),
    ("-0.0", "0"),
    ("+5", "5"),
    ("50%", "50%"),
    (r"50\%", "50%"),
    ("50 percent", "50%"),
    (r"\frac{2}{4}", "1/2"),
    (r"\dfrac{2}{4}", "1/2"),
    (r"\tfrac{2}{4}", "1/2"),
    (r"\frac24", "1/2"),
    ("2/4", "1/2"),
    (r"-\frac{2}{4}", "-1/2"),
    (r"\frac{-2}{-4}", "1/2"),
    ("4/-8", "-1/2"),
    (r"\frac{6}{3}", "2"),
    (r"\frac{0}{5}", "0"),
    ("1/0", "1/0"),
    (r"\frac{x}{2}", r"\frac{x}{2}"),
    ("x = 3", "3"),
    (r"\theta = 30^\circ", "30"),
    ("x_1 = -2", "-2"),
    ("x = 3 or x = 5", "x=3 or x=5"),
    (r"x \le 3", r"x\le3"),
    (r"\text{Yes}", "yes"),
    (r"\mathrm{cm}", "cm"),
    (r"\textbf{No Solution}", "no solution"),
    (r"\Delta", r"\Delta"),
    ("42 apples", "42"),
    ("3 million", "3 million"),
    ("2 and a half", "2 and a half"),
    ("5 m", "5 m"),
    ("(100, 200)", "(100, 200)"),
    ("(100,200)", "(100, 200)"),
    ("2x + 1", "2x+1"),
    (r"\left( 1 , 2 \right)", "(1, 2)"),
    (r"3 \cdot 4", r"3\cdot4"),
    (r"\sqrt{2}", r"\sqrt{2}"),
    (r"x^{2}", "x^2"),
    ("{5}", "5"),
    (r"\boxed{\frac{1}{2}}", "1/2"),
    (r"\boxed{7", ""),
    (r"\text{ab", "ab"),
    ("(B)", "b"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), NORMALIZE, ids=[n[0] or "empty" for n in NORMALIZE])
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_spellings_of_one_answer_vote_together() -> None:
    spellings = [
        r"\boxed{\frac{1}{2}}",
        r"\(\boxed{\dfrac{2}{4}}\)",
        "The answer is 1/2.",
        "**Answer:** $x = \\tfrac{1}{2}$",
        "So half of them: 1/2",
    ]
    assert {extract_answer(s) for s in spellings} == {"1/2"}
    assert tally([extract_answer(s) for s in spellings], range(5)).describe() == (
        "5 of 5 agree: 1/2"
    )


# --- the tally ---


def test_majority() -> None:
    result = tally(["391", "390", "391", None, "391"], [0, 1, 2, 3, 4])
    assert result == Tally(n=5, winner="391", winner_index=0, counts={"391": 3, "390": 1}, agree=3)
    assert result.describe() == "3 of 5 agree: 391"


def test_winner_index_is_the_earliest_finished_with_the_winning_answer() -> None:
    result = tally(["7", "7", "8"], [2, 1, 0])
    assert (result.winner, result.winner_index) == ("7", 1)


def test_tie_broken_by_finish_order_not_index() -> None:
    # Candidate 0 says 12, but candidate 3 (13) finished first.
    result = tally(["12", "13", "12", "13"], [3, 0, 1, 2])
    assert result.winner == "13"
    assert result.winner_index == 3
    assert list(result.counts) == ["13", "12"]
    assert result.describe() == "2 of 4 agree: 13 (tied with 12; the earlier finished wins)"
    flipped = tally(["12", "13", "12", "13"], [0, 3, 1, 2])
    assert (flipped.winner, flipped.winner_index) == ("12", 0)
    assert flipped.describe() == "2 of 4 agree: 12 (tied with 13; the earlier finished wins)"


def test_counts_are_most_votes_first_then_first_finish() -> None:
    result = tally(["a", "b", "c", "c", "b", "d"], [5, 0, 1, 2, 3, 4])
    assert list(result.counts.items()) == [("b", 2), ("c", 2), ("d", 1), ("a", 1)]
    assert result.describe() == "2 of 6 agree: b (tied with c; the earlier finished wins)"


def test_no_candidate_gave_an_answer() -> None:
    result = tally([None, None, None, None, None], [3, 1, 0, 2, 4])
    assert result == Tally(n=5, winner=None, winner_index=3, counts={}, agree=0)
    assert result.describe() == "no candidate gave an answer (5 candidates)"


def test_a_single_candidate() -> None:
    assert tally(["42"], [0]).describe() == "1 of 1 agree: 42"
    alone = tally([None], [0])
    assert alone.winner_index == 0
    assert alone.describe() == "no candidate gave an answer (1 candidate)"


def test_no_candidates() -> None:
    assert tally([], []) == Tally(n=0, winner=None, winner_index=None, counts={}, agree=0)


@pytest.mark.parametrize(
    "order", [[0, 1], [0, 1, 1], [0, 1, 3], [2, 1, 0, 0], [], [-1, 0, 1]], ids=str
)
def test_finish_order_must_list_every_index_once(order: list[int]) -> None:
    with pytest.raises(ValueError, match="finish_order"):
        tally(["1", "2", None], order)


# --- properties ---

# Text drawn from what answers are made of, so the rules actually fire.
PIECES = st.sampled_from(
    [
        *["1", "0", "5", "42", ",", ".", " ", "000", "-", "+", "/", "%", "$", "x", "=", "**"],
        *["\\frac", "\\dfrac", "{", "}", "\\text{", "\\left(", "\\right)", "(", ")", "^"],
        *["\\circ", "\\,", "apples", "or", "B", "Yes", "\\Delta", ":", "!", "\\boxed{", "\n"],
    ]
)
ANSWERISH = st.lists(PIECES, max_size=14).map("".join) | st.text(max_size=30)


@settings(max_examples=600, deadline=None)
@given(ANSWERISH)
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=300, deadline=None)
@given(ANSWERISH)
def test_an_extracted_answer_is_normalised_and_non_empty(text: str) -> None:
    answer = extract_answer(text)
    assert answer is None or (answer and normalize(answer) == answer)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["1", "2", "3"]))), st.randoms())
def test_tally_counts_add_up(extracted: list[str | None], rng: Random) -> None:
    order = list(range(len(extracted)))
    rng.shuffle(order)
    result = tally(extracted, order)
    assert sum(result.counts.values()) == sum(a is not None for a in extracted)
    assert result.n == len(extracted)
    if result.winner is not None:
        assert result.agree == max(result.counts.values()) == result.counts[result.winner]
        assert result.winner_index is not None
        assert extracted[result.winner_index] == result.winner
