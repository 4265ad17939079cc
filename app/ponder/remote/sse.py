"""An incremental parser of server-sent events, fed raw bytes as they come off the socket.

Every OpenAI-compatible server streams a chat completion as server-sent events: ``data:``
lines holding one JSON chunk each, a blank line after each event, and ``data: [DONE]`` at
the end. Around that the servers vary: llama-server sends ``: ping`` comment lines while a
long prompt is evaluated, some servers end lines with CRLF, some name events (``event:``)
or number them (``id:``), and a proxy may cut the byte stream anywhere, even inside a
UTF-8 character or between the CR and the LF of one line end.

Why written here rather than taken from a library: ``httpx-sse`` is built on the old
``httpx``, not on ``httpx2``, which Ponder uses (huggingface_hub brought it). ``httpx2``
carries a copy of it (``httpx2.EventSource``), but that one is bound to a live
``Response``, raises on any content type other than ``text/event-stream`` (so an error
body sent with ``application/json`` becomes an ``SSEError`` instead of the server's own
message), and has been in httpx2 only for some releases of a fast-moving 2.x line. This
parser is small, pure (bytes in, events out, no I/O), so the tests can cut a recorded
stream at every byte and check that the events do not change.

Rules, after the WHATWG "event stream interpretation" algorithm:

* Bytes are decoded as UTF-8 incrementally, so a character split across reads comes out
  whole; invalid bytes become U+FFFD rather than an exception. A leading BOM is dropped.
* A line ends at LF, CRLF or a lone CR. A CR at the very end of a read is held back until
  the next read says whether an LF follows.
* ``data:`` lines of one event are joined with "\\n". One space after the colon is
  dropped. A line starting with ``:`` is a comment and ignored. ``event:`` and ``id:`` are
  kept on the event; ``retry:`` and unknown fields are ignored.
* A blank line ends the event. An event without any ``data:`` line is not dispatched.
* Unlike a browser, :meth:`SSEParser.close` also dispatches an event that the stream left
  unterminated (no blank line after it): a server that closes the connection right after
  its last ``data:`` line still said what it said.

``[DONE]`` is not special at this level: it is an event whose data is ``[DONE]``
(:attr:`SSEEvent.is_done`); the caller decides what it means.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None

    @property
    def is_done(self) -> bool:
        """The OpenAI end-of-stream marker, ``data: [DONE]``."""
        return self.data.strip() == DONE


class SSEParser:
    """Feed it bytes with :meth:`feed`; call :meth:`close` at the end of the stream."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""  # decoded text not yet split into lines
        self._started = False  # the BOM check is done
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._has_data = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse the next piece of the stream; return the events it completed."""
        return self._consume(self._decoder.decode(chunk), final=False)

    def close(self) -> list[SSEEvent]:
        """End of stream: the events still held (an unterminated last event included)."""
        events = self._consume(self._decoder.decode(b"", final=True), final=True)
        if self._has_data:
            events.append(self._dispatch_event())
        return events

    # -- internals ----------------------------------------------------------------

    def _consume(self, text: str, *, final: bool) -> list[SSEEvent]:
        if not self._started and (text or final):
            if text.startswith("\ufeff"):
                text = text[1:]
            self._started = bool(text) or final
        buf = self._buffer + text
        events: list[SSEEvent] = []
        start = 0
        n = len(buf)
        while start < n:
            lf = buf.find("\n", start)
            cr = buf.find("\r", start, lf if lf != -1 else n)
            if cr != -1:
                if cr == n - 1 and not final:
                    break  # an LF may follow in the next read
                end, after = cr, cr + 2 if cr + 1 < n and buf[cr + 1] == "\n" else cr + 1
            elif lf != -1:
                end, after = lf, lf + 1
            else:
                break
            event = self._line(buf[start:end])
            if event is not None:
                events.append(event)
            start = after
        rest = buf[start:]
        if final and rest:
            event = self._line(rest)
            if event is not None:
                events.append(event)
            rest = ""
        self._buffer = rest
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if self._has_data:
                return self._dispatch_event()
            self._reset()
            return None
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        return None

    def _dispatch_event(self) -> SSEEvent:
        event = SSEEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._last_id,
        )
        self._reset()
        return event

    def _reset(self) -> None:
        self._data = []
        self._event = ""
        self._has_data = False
