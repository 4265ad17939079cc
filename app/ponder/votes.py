r"""Self-consistency votes: each candidate's final answer, normalised, and the tally.

``ponder run MODEL --votes N`` samples N candidates; :func:`extract_answer` takes each
one's final answer from its answer text (never its reasoning), :func:`normalize` puts it
in one canonical spelling, and :func:`tally` counts the votes. Pure and stdlib only.
No library does this for free-form R1 answers: math-verify and sympy-based graders
parse and evaluate expressions (and pull in heavy dependencies), while a vote only needs
two spellings of one answer to compare equal. So it is written here by hand, and it
never evaluates anything.

Extraction (:func:`extract_answer`), first rule that gives a non-empty answer wins
-------------------------------------------------------------------------------------
1. **The last box.** The last ``\boxed{...}`` (also ``\boxed {...}`` and ``\fbox{...}``)
   whose braces balance; nested braces are fine (``\boxed{\frac{1}{2}}``), escaped ones
   (``\{``) do not count. A box that never closes (a cut-off reply) or is empty is
   skipped, and the box before it is tried.
2. **An answer phrase.** The last "answer is", "answer:" or "answer =" (any case, so
   "The final answer is", "**Answer:**", "Final answer: $x = 3$"). Its value is the rest
   of that line up to the end of the sentence (``. ! ? ;`` before a space) or a
   following "because", "since", "as", "which", "so", "given", "where" or "when"; when
   that is empty, the next non-empty line. A value whose first word is a judgement
   ("correct", "right", "wrong", ...: "I checked that the answer is correct.") is not
   an answer and the phrase before it is tried. A value longer than 40 characters gives
   its first number, or nothing.
3. **The final line.** The last line that is not empty once normalised (so a closing
   ``\]`` or ``$$`` does not count) and holds no answer phrase (rule 2 passed it over:
   "the answer is correct"), less a leading list or heading marker: its last
   number (``-5``, ``3.5``, ``1,000``, ``3/4``, ``\frac{3}{4}``, ``50%``; not an exponent
   or a subscript, not a digit inside a word), else the line itself when it is at most
   40 characters once normalised.
4. Otherwise, and for an empty or whitespace answer: ``None``.

Normalisation (:func:`normalize`), applied until the text no longer changes
-------------------------------------------------------------------------
* LaTeX: ``$``, ``\$``, ``\(``, ``\)``, ``\[``, ``\]`` go; ``\text``, ``\textbf``,
  ``\mathrm``, ``\mathbf``, ``\operatorname``, ``\boxed`` (and a few more) keep only
  their content (an unclosed one loses its head; an unclosed box, cut off mid-answer,
  goes with all after it, since ``\boxed{7`` may have been ``75``);
  ``\left``, ``\right``, ``\displaystyle`` and ``\big`` go; ``\,`` and ``\!`` go, wider
  spacing (``\;``, ``\quad``, ...) is a space; ``^\circ`` and ``°`` go; ``\%`` is ``%``;
  ``\dfrac`` and ``\tfrac`` are ``\frac``; ``1{,}000`` is ``1,000``; ``x^{2}`` is
  ``x^2``; outer braces around the whole value go.
* Markdown bold ``**`` and surrounding backticks go.
* Whitespace is collapsed; trailing ``. , ; : !`` go; letters are casefolded, except in
  LaTeX command names (``\Delta`` stays).
* A leading assignment ``x =``, ``x_1 =``, ``\theta =`` goes when no other relation
  (``=``, ``<``, ``>``, ``\le``, ...) follows: ``x = 3`` is ``3``, ``x = 3 or x = 5`` stays.
* A number followed by one to three unit words of two letters or more goes to the
  number (``42 apples`` and ``18 dollars`` are ``42`` and ``18``), unless a word is a
  magnitude or a connective (``3 million``, ``2 and a half`` stay); ``50 percent`` is
  ``50%``.
* A whole number: separators go (``1,000`` and ``1 000`` are ``1000``; only groups of
  three, so ``100, 200`` stays a list), leading zeros and trailing decimal zeros go
  (``3.50`` is ``3.5``, ``2.0`` is ``2``), as do ``+`` and the sign of zero (``-0`` is
  ``0``). A percent sign stays (``50%`` is not ``50``, nor ``0.5``).
* A whole simple fraction of integers, ``\frac{2}{4}``, ``\frac24``, ``2/4``, ``-\frac{2}{4}``,
  is reduced: ``1/2``, ``-1/2``; a denominator of 1 gives the integer (``\frac{6}{3}`` is
  ``2``). A zero denominator is left alone. Fractions inside a larger expression, and
  decimals against fractions (``0.5`` against ``1/2``), are not compared.
* A single letter in parentheses is the letter (``(B)`` is ``b``), for multiple choice.
* Anything else keeps its form with canonical spacing: no spaces around operators,
  brackets or LaTeX commands, ``", "`` after a comma.

Votes (:func:`tally`)
---------------------
The most common answer wins. A tie goes to the answer whose first vote finished
earliest (finish order, not candidate index), and ``Tally.winner_index`` is that
earliest finished candidate with the winning answer. Candidates without an answer count
in ``n`` but vote for nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Tally", "extract_answer", "normalize", "tally"]

SHORT_LINE = 40  # the longest final line (or phrase value) taken whole, once normalised
_MAX_PASSES = 8

# --- extraction ---

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_PHRASE = re.compile(
    r"\banswer\b(?:\s*\*\*)?\s*(?:is\b\s*:?|[:=])(?:\s*\*\*)?[ \t]*(?P<rest>[^\n]*)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(
    r"[.!?;](?=\s)|(?:^|,?\s+)(?:because|since|as|which|so|given|where|when)\b", re.IGNORECASE
)
_NOT_ANSWERS = frozenset(
    {"correct", "incorrect", "right", "wrong", "not", "indeed", "valid", "consistent"}
    | {"confirmed", "verified", "clear", "reasonable", "likely", "probably", "that", "this"}
    | {"the"}
)
_LIST_MARKER = re.compile(r"^(?:#{1,6}|>|[-*+]|\d+[.)])\s+")
_NUMBER_IN_TEXT = re.compile(
    r"(?<![\w.^_])-?(?:\\frac\s*\{\s*[+-]?\d+\s*\}\s*\{\s*[+-]?\d+\s*\}|\\frac\d\d|\d+/\d+"
    r"|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)%?(?![\w/])"
    r"(?:\s+(?:hundred|thousand|million|billion|trillion)\b)?",
    re.IGNORECASE,
)

# --- normalisation ---

_WRAPPER = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mathsf|mathtt|mbox"
    r"|operatorname|boxed|fbox)\s*\{"
)
_MATH_DELIMITER = re.compile(r"(?<!\\)\\[()\[\]]")
_TIGHT_SPACE = re.compile(r"\\[,!]")
_WIDE_SPACE = re.compile(r"\\(?:quad|qquad)(?![A-Za-z])|\\[;: ]")
_SIZING = re.compile(r"\\(?:left|right|displaystyle|bigl|bigr|Bigl|Bigr|big|Big)(?![A-Za-z])")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")
_FRAC_VARIANT = re.compile(r"\\[dt]frac(?![A-Za-z])")
_BRACED_COMMA = re.compile(r"(?<=\d)\{,\}(?=\d)")
_SINGLE_SCRIPT = re.compile(r"([\^_])\{\s*(\w)\s*\}")
_TRAILING = re.compile(r"[\s.,;:!]+$")
_COMMAND = re.compile(r"(\\[A-Za-z]+)")
_ASSIGNMENT = re.compile(r"(?:[a-z]|\\[A-Za-z]+)(?:_\{?[a-z0-9]+\}?)?\s*=\s*(?P<rest>[^=<>]+)")
_RELATION = re.compile(r"\\(?:le|ge|ne|leq|geq|neq|lt|gt|approx|equiv|sim|in)(?![A-Za-z])")
_UNIT_TAIL = re.compile(
    r"(?P<num>[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?|[+-]?\d+/\d+)"
    r" (?P<words>[^\W\d_]{2,}(?: [^\W\d_]{2,}){0,2})"
)
_NOT_UNITS = frozenset(
    {"hundred", "thousand", "million", "billion", "trillion", "dozen", "score"}
    | {"and", "or", "to", "plus", "minus", "times", "over", "divided", "point", "of"}
    | {"half", "halves", "quarter", "quarters", "third", "thirds", "fourths"}
)
_WHOLE_NUMBER = re.compile(
    r"(?P<sign>[+-]?)(?P<int>\d{1,3}(?:,\d{3})+|\d{1,3}(?: \d{3})+|\d*)"
    r"(?:\.(?P<dec>\d+))?(?P<pct>%?)"
)
_WHOLE_FRACTION = re.compile(
    r"(?P<sign>[+-]?)(?:\\frac\s*\{\s*(?P<a>[+-]?\d{1,30})\s*\}\s*\{\s*(?P<b>[+-]?\d{1,30})\s*\}"
    r"|\\frac\s*(?P<c>\d)(?P<d>\d)|(?P<e>[+-]?\d{1,30})\s*/\s*(?P<f>[+-]?\d{1,30}))"
)
_LETTER_CHOICE = re.compile(r"\(([^\W\d_])\)")
_AROUND_OPERATOR = re.compile(r"\s*([+\-*/=^_()\[\]{}<>|%])\s*")
_AROUND_COMMA = re.compile(r"\s*,\s*")
_BEFORE_COMMAND = re.compile(r"\s+(?=\\[A-Za-z])")
_AFTER_COMMAND = re.compile(r"(\\[A-Za-z]+)\s+(?![A-Za-z])")


def extract_answer(answer: str) -> str | None:
    """The candidate's final answer, normalised, from its answer text (not its reasoning);
    None when there is none. The rules are in the module docstring."""
    if not answer.strip():
        return None
    for content in reversed(_boxes(answer)):
        if value := normalize(content):
            return value
    return _from_phrase(answer) or _from_final_line(answer)


def normalize(text: str) -> str:
    """One canonical spelling of an answer (see the module docstring); "" when nothing is left.

    Idempotent: the rules are applied until the text stops changing.
    """
    for _ in range(_MAX_PASSES):
        again = _normalize_once(text)
        if again == text:
            break
        text = again
    return text


def _closing_brace(text: str, opening: int) -> int | None:
    """Index of the brace that closes ``text[opening] == "{"``; None when it never closes."""
    depth = 0
    i = opening
    while i < len(text):
        char = text[i]
        if char == "\\":  # an escaped brace (or backslash) does not count
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _boxes(text: str) -> list[str]:
    """The contents of the balanced boxes, in order of where they start.

    One pass with a stack of open braces, so a reply that repeats an unclosed box many
    times costs linear time, not a scan to the end per box.
    """
    box_braces = {match.end() - 1: match.end() for match in _BOX.finditer(text)}
    spans: list[tuple[int, int]] = []
    stack: list[int] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":  # an escaped brace (or backslash) does not count
            i += 2
            continue
        if char == "{":
            stack.append(i)
        elif char == "}" and stack:
            opening = stack.pop()
            if opening in box_braces:
                spans.append((box_braces[opening], i))
        i += 1
    return [text[start:close] for start, close in sorted(spans)]


def _from_phrase(answer: str) -> str | None:
    for match in reversed(list(_PHRASE.finditer(answer))):
        rest = match["rest"]
        end = _SENTENCE_END.search(rest)
        value = rest[: end.start()] if end else rest
        if not value.strip():
            following = [line for line in answer[match.end() :].splitlines() if line.strip()]
            value = following[0] if following else ""
        normalized = normalize(value)
        if not normalized or normalized.split(maxsplit=1)[0] in _NOT_ANSWERS:
            continue
        if len(normalized) <= SHORT_LINE:
            return normalized
        numbers = _NUMBER_IN_TEXT.findall(_clean_latex(value))
        if numbers:
            return normalize(numbers[0])
    return None


def _from_final_line(answer: str) -> str | None:
    for raw in reversed(answer.splitlines()):
        line = _LIST_MARKER.sub("", raw.strip())
        whole = normalize(line)
        if not whole or _PHRASE.search(line):  # empty, or an answer phrase rule 2 passed over
            continue
        if _whole_number(whole) is not None or _whole_fraction(whole) is not None:
            return whole  # "1 000", which the search below would read as two numbers
        numbers = _NUMBER_IN_TEXT.findall(_clean_latex(line))
        if numbers:
            return normalize(numbers[-1])
        return whole if len(whole) <= SHORT_LINE else None
    return None


def _unwrap(text: str) -> str:
    """``\\text{a}`` -> ``a`` for each wrapper; an unclosed one loses its head, an unclosed
    box all from it on."""
    while match := _WRAPPER.search(text):
        close = _closing_brace(text, match.end() - 1)
        if close is None and match[0].startswith(("\\boxed", "\\fbox")):
            text = text[: match.start()]  # a cut-off box: what it would have said is unknown
        elif close is None:
            text = text[: match.start()] + text[match.end() :]
        else:
            text = text[: match.start()] + text[match.end() : close] + text[close + 1 :]
    return text


def _clean_latex(text: str) -> str:
    text = text.replace("\\$", "").replace("$", "")
    text = _MATH_DELIMITER.sub("", text)
    text = _TIGHT_SPACE.sub("", text)
    text = _WIDE_SPACE.sub(" ", text)
    text = _SIZING.sub("", text)
    text = _DEGREES.sub("", text)
    text = text.replace("\\%", "%")
    text = _FRAC_VARIANT.sub(r"\\frac", text)
    text = _unwrap(text)
    text = _BRACED_COMMA.sub(",", text)
    return _SINGLE_SCRIPT.sub(r"\1\2", text)


def _casefold(text: str) -> str:
    parts = _COMMAND.split(text)  # odd positions are LaTeX command names
    return "".join(part if i % 2 else part.casefold() for i, part in enumerate(parts))


def _normalize_once(text: str) -> str:
    text = _clean_latex(text).replace("**", "").strip().strip("`")
    while text.startswith("{") and _closing_brace(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    text = _TRAILING.sub("", " ".join(text.split()))
    text = _casefold(text)
    if (assignment := _ASSIGNMENT.fullmatch(text)) and not _RELATION.search(assignment["rest"]):
        text = assignment["rest"].strip()
    if unit := _UNIT_TAIL.fullmatch(text):
        words = unit["words"].split()
        if words == ["percent"]:
            text = unit["num"].rstrip("%") + "%"
        elif not _NOT_UNITS.intersection(words):
            text = unit["num"]
    if (number := _whole_number(text)) is not None:
        return number
    if (fraction := _whole_fraction(text)) is not None:
        return fraction
    if choice := _LETTER_CHOICE.fullmatch(text):
        return choice[1]
    text = _AROUND_OPERATOR.sub(r"\1", text)
    text = _AROUND_COMMA.sub(", ", text)
    text = _BEFORE_COMMAND.sub("", text)
    return _AFTER_COMMAND.sub(r"\1", text)


def _whole_number(text: str) -> str | None:
    match = _WHOLE_NUMBER.fullmatch(text)
    if match is None or not (match["int"] or match["dec"]):
        return None
    whole = match["int"].replace(",", "").replace(" ", "").lstrip("0") or "0"
    decimals = (match["dec"] or "").rstrip("0")
    body = f"{whole}.{decimals}" if decimals else whole
    sign = "-" if match["sign"] == "-" and body != "0" else ""
    return sign + body + match["pct"]


def _whole_fraction(text: str) -> str | None:
    match = _WHOLE_FRACTION.fullmatch(text)
    if match is None:
        return None
    top, bottom = next(
        (match[a], match[b]) for a, b in (("a", "b"), ("c", "d"), ("e", "f")) if match[a]
    )
    num, den = int(top), int(bottom)
    if den == 0:
        return None
    if match["sign"] == "-":
        num = -num
    if den < 0:
        num, den = -num, -den
    divisor = math.gcd(num, den)
    num, den = num // divisor, den // divisor
    return str(num) if den == 1 else f"{num}/{den}"


# --- the tally ---


@dataclass(frozen=True, slots=True)
class Tally:
    """The outcome of one vote; see :func:`tally`."""

    n: int  # candidates voted on (all of them, including those with no answer)
    winner: str | None  # the winning extracted answer; None when no candidate had one
    # Index (into the candidates) of the earliest finished candidate with the winning
    # answer; when no candidate had an answer, the earliest finished candidate (None: none).
    winner_index: int | None
    counts: dict[str, int]  # answer -> votes, most votes first, ties in order of first finish
    agree: int  # votes for the winner (0 when winner is None)

    def describe(self) -> str:
        """``"4 of 5 agree: 391"``; a tie says so; no answer says how many candidates."""
        if self.winner is None:
            noun = "candidate" if self.n == 1 else "candidates"
            return f"no candidate gave an answer ({self.n} {noun})"
        text = f"{self.agree} of {self.n} agree: {self.winner}"
        tied = [a for a, c in self.counts.items() if c == self.agree and a != self.winner]
        if tied:
            text += f" (tied with {', '.join(tied)}; the earlier finished wins)"
        return text


def tally(extracted: Sequence[str | None], finish_order: Sequence[int]) -> Tally:
    """``extracted[i]`` is candidate i's answer; ``finish_order`` lists candidate indexes in
    the order they finished (every index exactly once; ValueError otherwise)."""
    n = len(extracted)
    if sorted(finish_order) != list(range(n)):
        raise ValueError(
            f"finish_order must list each of the {n} candidate indexes once: {list(finish_order)}"
        )
    firsts: dict[str, int] = {}  # answer -> its earliest finished candidate, in finish order
    votes: dict[str, int] = {}
    for index in finish_order:
        answer = extracted[index]
        if answer is not None:
            firsts.setdefault(answer, index)
            votes[answer] = votes.get(answer, 0) + 1
    counts = dict(sorted(votes.items(), key=lambda item: -item[1]))  # stable: finish order
    if not counts:
        first = finish_order[0] if n else None
        return Tally(n=n, winner=None, winner_index=first, counts={}, agree=0)
    winner = next(iter(counts))
    agree = counts[winner]
    return Tally(n=n, winner=winner, winner_index=firsts[winner], counts=counts, agree=agree)
