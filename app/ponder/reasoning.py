"""Split a streamed model reply into reasoning and answer, token by token.

R1-style models write their thinking between ``<think>`` and ``</think>`` and
the answer after it. No library does this incrementally with the whitespace
rules a chat UI needs, so it is written here by hand, in the manner of ollama's
``thinking/parser.go``: a small state machine fed one detokenized piece at a
time, pure and without I/O.

Semantics
---------
* **Where thinking starts.** The reply either starts inside thinking (the prompt
  was prefilled with ``"<think>\\n"``: ``start_in_reasoning=True``) or the model
  may open thinking itself with the open tag as its first non-whitespace text.
  Only a think block at the very start counts: an open tag later in the answer
  is plain answer text. With ``start_in_reasoning=True`` one redundant leading
  open tag (after optional whitespace) is swallowed.
* **Where thinking ends.** In reasoning mode the first close tag ends it and
  everything after is answer. Later tags in the answer are plain text.
  :meth:`ReasoningSplitter.close_reasoning` forces that switch without a tag.
  (The TUI's "wrap up" does not use it: it puts a real close tag into the model's
  context, so the model knows to answer; see ``LoadedModel.reply``.)
* **Tags split across chunks.** A tag may be cut at any chunk boundary
  (``"</th"`` + ``"ink>"``). The splitter holds back only the suffix that could
  still begin a tag, and releases it as soon as it cannot.
* **Whitespace.** Leading whitespace of the reasoning and of the answer (such as
  the ``"\\n\\n"`` after ``</think>``) is dropped, and so is whitespace right
  before the close tag: in reasoning mode trailing whitespace is held back until
  something else follows, and discarded when the close tag (or the end of the
  stream) comes. Whitespace before the decision whether an open tag starts the
  stream is dropped. Whitespace inside either part is kept as it is.
* **No close tag.** A trace that never closes (max tokens, Ctrl-C) stays
  reasoning: :meth:`ReasoningSplitter.flush` emits what was held as reasoning and
  the answer is empty.
* **No thinking.** With ``start_in_reasoning=False`` and no open tag at the start,
  everything is answer.
* **Deltas.** Empty deltas are never emitted. One call returns at most one
  reasoning delta followed by at most one answer delta.

The outcome does not depend on how the text is cut into chunks: feeding the
pieces and flushing gives, per kind, exactly :func:`split_reasoning` of the
whole text. Each ``feed`` costs O(len(chunk)) amortised; nothing already
released is scanned again.
"""

from __future__ import annotations

import enum

from ponder.events import AnswerDelta, ReasoningDelta

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

Delta = ReasoningDelta | AnswerDelta


class _Phase(enum.Enum):
    START = enum.auto()  # undecided: is there an open tag at the very start?
    REASONING = enum.auto()
    ANSWER = enum.auto()


def _partial_tag_start(buf: str, tag: str) -> int:
    """Index of the longest suffix of ``buf`` that is a proper prefix of ``tag``.

    Returns ``len(buf)`` when no suffix could begin the tag. Only the last
    ``len(tag) - 1`` characters are examined.
    """
    i = buf.find(tag[0], max(0, len(buf) - len(tag) + 1))
    while i != -1:
        if tag.startswith(buf[i:]):
            return i
        i = buf.find(tag[0], i + 1)
    return len(buf)


def _deltas(reasoning: str, answer: str) -> list[Delta]:
    out: list[Delta] = []
    if reasoning:
        out.append(ReasoningDelta(reasoning))
    if answer:
        out.append(AnswerDelta(answer))
    return out


def _check_tag(tag: str) -> None:
    if not tag or tag != tag.strip():
        raise ValueError(f"a think tag must be non-empty without outer whitespace: {tag!r}")


class ReasoningSplitter:
    """Incremental splitter of one reply; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        start_in_reasoning: bool = False,
        open_tag: str = OPEN_TAG,
        close_tag: str = CLOSE_TAG,
    ) -> None:
        _check_tag(open_tag)
        _check_tag(close_tag)
        self._start_in_reasoning = start_in_reasoning
        self._open = open_tag
        self._close = close_tag
        self._phase = _Phase.START
        self._head = ""  # START: non-whitespace text that may still become the open tag
        self._partial = ""  # REASONING: a suffix that may still become the close tag
        self._pending_ws: list[str] = []  # REASONING: trailing whitespace, in order
        self._reasoning_started = False
        self._answer_started = False
        self._saw_close = False

    @property
    def in_reasoning(self) -> bool:
        """True while thinking, including the undecided start of a prefilled reply."""
        if self._phase is _Phase.START:
            return self._start_in_reasoning
        return self._phase is _Phase.REASONING

    @property
    def saw_close_tag(self) -> bool:
        """True once the close tag itself appeared in the stream."""
        return self._saw_close

    def feed(self, text: str) -> list[Delta]:
        """Take the next piece of the reply; return what can be released now."""
        reasoning, answer = "", ""
        rest: str | None = text
        if self._phase is _Phase.START:
            rest = self._feed_start(text)
        if rest is not None and self._phase is _Phase.REASONING:
            reasoning, rest = self._feed_reasoning(rest)
        if rest is not None and self._phase is _Phase.ANSWER:
            answer = self._answer(rest)
        return _deltas(reasoning, answer)

    def flush(self) -> list[Delta]:
        """End of stream: release whatever is held back."""
        if self._phase is _Phase.START and not self._start_in_reasoning:
            head, self._head = self._head, ""
            self._phase = _Phase.ANSWER
            return _deltas("", self._answer(head))
        return _deltas(self._end_reasoning(), "")

    def close_reasoning(self) -> list[Delta]:
        """Switch to the answer now, as if the close tag had arrived.

        A no-op when not in reasoning. :attr:`saw_close_tag` stays False.
        """
        if not self.in_reasoning:
            return []
        reasoning = self._end_reasoning()
        self._phase = _Phase.ANSWER
        return _deltas(reasoning, "")

    # -- phases ---------------------------------------------------------------

    def _feed_start(self, text: str) -> str | None:
        """Decide whether the stream opens with the open tag.

        Returns the text left for the next phase, or None while undecided.
        """
        head = (self._head + text).lstrip()
        if len(head) < len(self._open) and self._open.startswith(head):
            self._head = head
            return None
        self._head = ""
        if head.startswith(self._open):
            self._phase = _Phase.REASONING
            return head[len(self._open) :]
        self._phase = _Phase.REASONING if self._start_in_reasoning else _Phase.ANSWER
        return head

    def _feed_reasoning(self, text: str) -> tuple[str, str | None]:
        """Return (reasoning to release, text after the close tag or None)."""
        buf = self._partial + text
        end = buf.find(self._close)
        if end != -1:
            self._partial = ""
            self._saw_close = True
            self._phase = _Phase.ANSWER
            return self._release(buf[:end], final=True), buf[end + len(self._close) :]
        cut = _partial_tag_start(buf, self._close)
        self._partial = buf[cut:]
        return self._release(buf[:cut], final=False), None

    def _release(self, body: str, *, final: bool) -> str:
        """Reasoning ready to emit from ``body``, holding back trailing whitespace.

        With ``final`` the trailing whitespace is discarded instead of held.
        """
        core = body.rstrip()
        trailing = body[len(core) :]
        if not self._reasoning_started:
            core = core.lstrip()
        out = ""
        if core:
            out = "".join(self._pending_ws) + core
            self._pending_ws.clear()
            self._reasoning_started = True
        if final:
            self._pending_ws.clear()
        elif trailing and self._reasoning_started:
            self._pending_ws.append(trailing)
        return out

    def _end_reasoning(self) -> str:
        """Release the held text as reasoning, dropping trailing whitespace."""
        if self._phase is _Phase.START:
            body, self._head = self._head, ""
            self._phase = _Phase.REASONING
        else:
            body, self._partial = self._partial, ""
        return self._release(body, final=True)

    def _answer(self, text: str) -> str:
        if self._answer_started:
            return text
        text = text.lstrip()
        self._answer_started = bool(text)
        return text


def split_reasoning(text: str, *, start_in_reasoning: bool = False) -> tuple[str, str]:
    """Return ``(reasoning, answer)`` of a whole reply, by the splitter's rules."""
    splitter = ReasoningSplitter(start_in_reasoning=start_in_reasoning)
    reasoning: list[str] = []
    answer: list[str] = []
    for delta in [*splitter.feed(text), *splitter.flush()]:
        match delta:
            case ReasoningDelta(text=piece):
                reasoning.append(piece)
            case AnswerDelta(text=piece):
                answer.append(piece)
    return "".join(reasoning), "".join(answer)


def strip_reasoning(text: str) -> str:
    """Return a stored reply as it should go back to the model: the answer only.

    Drops everything up to and including the first close tag (when present),
    then a leading ``<think>…</think>`` block, then leading whitespace. A reply
    that opens with an unclosed ``<think>`` is all reasoning and becomes "".
    """
    end = text.find(CLOSE_TAG)
    if end != -1:
        text = text[end + len(CLOSE_TAG) :]
    text = text.lstrip()
    if text.startswith(OPEN_TAG):
        end = text.find(CLOSE_TAG)
        text = "" if end == -1 else text[end + len(CLOSE_TAG) :]
    return text.lstrip()
