"""The server-sent-events parser: the wire shapes the servers use, cut at every byte."""

from __future__ import annotations

import pytest

from ponder.remote.sse import SSEEvent, SSEParser

E = SSEEvent

CASES: list[tuple[str, bytes, list[SSEEvent]]] = [
    ("one event", b"data: {}\n\n", [E("{}")]),
    ("two events", b"data: a\n\ndata: b\n\n", [E("a"), E("b")]),
    ("no space after the colon", b"data:a\n\n", [E("a")]),
    ("only one leading space is dropped", b"data:  a\n\n", [E(" a")]),
    ("multi-line data joined by LF", b"data: a\ndata: b\ndata:\n\n", [E("a\nb\n")]),
    ("CRLF line ends", b"data: a\r\n\r\ndata: b\r\n\r\n", [E("a"), E("b")]),
    ("lone CR line ends", b"data: a\r\rdata: b\r\r", [E("a"), E("b")]),
    ("mixed line ends", b"data: a\r\n\ndata: b\n\r\n", [E("a"), E("b")]),
    # llama-server's keep-alive while a long prompt is evaluated (server.cpp, "ping").
    ("comment lines ignored", b": ping\n\ndata: a\n: ping\n\n", [E("a")]),
    ("event and id kept", b"event: delta\nid: 7\ndata: a\n\n", [E("a", "delta", "7")]),
    (
        "id carries over to the next event",
        b"id: 7\ndata: a\n\ndata: b\n\n",
        [E("a", id="7"), E("b", id="7")],
    ),
    (
        "event type resets after dispatch",
        b"event: x\ndata: a\n\ndata: b\n\n",
        [E("a", "x"), E("b")],
    ),
    ("retry and unknown fields ignored", b"retry: 10\nfoo: bar\ndata: a\n\n", [E("a")]),
    ("a field name alone", b"data\n\n", [E("")]),
    ("an event without data is not dispatched", b"event: x\n\ndata: a\n\n", [E("a")]),
    ("blank lines alone dispatch nothing", b"\n\n\r\n", []),
    ("a leading BOM is dropped", b"\xef\xbb\xbfdata: a\n\n", [E("a")]),
    ("UTF-8 data", "data: «Zürich» 北京 🎉\n\n".encode(), [E("«Zürich» 北京 🎉")]),
    ("invalid UTF-8 becomes U+FFFD", b"data: a\xffb\n\n", [E("a\ufffdb")]),
    ("[DONE]", b"data: {}\n\ndata: [DONE]\n\n", [E("{}"), E("[DONE]")]),
    ("unterminated last event is kept", b"data: a\n\ndata: b\n", [E("a"), E("b")]),
    ("unterminated last line is kept", b"data: a", [E("a")]),
    ("unterminated last line after CR", b"data: a\r", [E("a")]),
]


def _parse(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.close()


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_whole(raw: bytes, expected: list[SSEEvent]) -> None:
    assert _parse([raw]) == expected


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cut_anywhere(raw: bytes, expected: list[SSEEvent]) -> None:
    """The events do not depend on where the reads end: every cut, and byte by byte."""
    for cut in range(1, len(raw)):
        assert _parse([raw[:cut], raw[cut:]]) == expected, f"cut at byte {cut}"
    assert _parse([raw[i : i + 1] for i in range(len(raw))]) == expected


def test_events_come_out_as_soon_as_they_end() -> None:
    """An event is dispatched by the read that completes it, not later."""
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"\n") == [E("a")]
    assert parser.feed("data: é".encode()[:-1]) == []  # half of "é"
    assert parser.feed(b"\xa9\n\n") == [E("é")]


def test_a_cr_at_the_end_of_a_read_waits_for_the_next() -> None:
    """CR then LF in the next read is one line end, not a line end and a blank line."""
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\r\n\r\n") == [E("a\nb")]


def test_done_marker() -> None:
    assert E("[DONE]").is_done
    assert E(" [DONE] ").is_done
    assert not E('{"x": "[DONE]"}').is_done
