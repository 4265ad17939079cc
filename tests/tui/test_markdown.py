"""MarkdownText: streamed text draws as the whole text does, at the cost of its last block.

The widget cuts Markdown into top-level blocks and keeps each finished block's
rendered lines, so an append renders one block again, not the document. These tests
check the cut (markdown-it's blocks, kept exactly), that streaming in any pieces
draws what the whole text draws, and, by counting renders, that the work of an
append does not grow with the text. The speed itself is bench/bench_tui.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.selection import Selection

from ponder.tui.widgets import markdown
from ponder.tui.widgets.markdown import MarkdownText, block_starts, markdown_parser
from support.scripted import R1_ANSWER, R1_REASONING, pieces

pytestmark = pytest.mark.anyio

SIZE = (80, 40)

# Every kind of block, including the ones more text can still change while they are
# last: a paragraph that turns into a setext heading, a table whose delimiter row comes
# later, a list that goes on after a blank line, a fence left open for a while.
DOCUMENT = f"""# A heading

{R1_REASONING}
A paragraph that becomes a heading
----------------------------------

| a | b |
|---|--:|
| 1 | 22 |

- one
- two

- three, after a blank line

1. first
2. second

> quoted
> twice

---

```python
def f():

    return 17 * 23  # a blank line inside the fence
```

{R1_ANSWER}
Last words, no newline"""


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


class Host(App[None]):
    def __init__(self, *texts: str) -> None:
        super().__init__()
        self.texts = texts

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            for text in self.texts:
                yield MarkdownText(text)


def drawn(widget: MarkdownText) -> list[str]:
    """The widget's lines as the screen shows them."""
    return [widget.render_line(y).text.rstrip() for y in range(widget.size.height)]


@contextmanager
def counting_renders() -> Iterator[list[str]]:
    """The sources of the blocks Rich renders while the block runs."""
    seen: list[str] = []
    real = markdown._Markdown.__init__

    def spy(self: markdown._Markdown, source: str, look: markdown.Look) -> None:
        seen.append(source)
        real(self, source, look)

    markdown._Markdown.__init__ = spy  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        markdown._Markdown.__init__ = real  # type: ignore[method-assign]


def test_blocks_start_where_markdown_it_starts_them() -> None:
    text = "# Title\r\n\r\nOne\ntwo\n\n```\ncode\n\nmore\n```\n| a |\n|---|\n| 1 |\n"
    starts = block_starts(markdown_parser(), text)
    assert [text[i : i + 4] for i in starts] == ["# Ti", "One\n", "```\n", "| a "]


def test_an_unfinished_block_is_one_block() -> None:
    # Until the fence closes, everything after it is code; so is the table its rows.
    assert len(block_starts(markdown_parser(), "Intro\n\n```\nx\n\n# not a heading\n")) == 2
    assert len(block_starts(markdown_parser(), "| a |\n|---|\n| 1 |\n| 2 |")) == 1


async def test_streamed_in_any_pieces_it_draws_what_the_whole_text_draws() -> None:
    chars = DOCUMENT[:900]  # one character at a time: every cut a stream can make
    app = Host(DOCUMENT, "", "", chars)
    async with app.run_test(size=SIZE) as pilot:
        whole, tokens, lines, one_by_one = app.query(MarkdownText)
        for piece in pieces(DOCUMENT):
            tokens.append(piece)
        for line in DOCUMENT.splitlines(keepends=True):
            lines.append(line)
        await pilot.pause()
        assert tokens.source == lines.source == DOCUMENT
        assert drawn(tokens) == drawn(whole)
        assert drawn(lines) == drawn(whole)
        single = MarkdownText()
        await app.query_one(VerticalScroll).mount(single)
        for char in chars:
            single.append(char)
        await pilot.pause()
        assert drawn(single) == drawn(one_by_one)
        text = "\n".join(drawn(whole))
        for expected in ("A heading", "17 × 23 = 391", "return 17 * 23", "three, after", "quoted"):
            assert expected in text


async def test_an_append_renders_the_last_block_however_long_the_text() -> None:
    sections = [f"## Check {n}\n\n{R1_ANSWER}\nSo check {n} holds" for n in range(40)]
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = MarkdownText()
        await app.query_one(VerticalScroll).mount(widget)
        for section in sections:
            widget.append(f"\n\n{section}" if widget.source else section)
        await pilot.pause()
        with counting_renders() as rendered:
            widget.append(", and so does the answer.")
            await pilot.pause()
        assert rendered == ["So check 39 holds, and so does the answer."]
        with counting_renders() as rendered:
            widget.append("\n\nA new paragraph")
            await pilot.pause()
        # The block it finished, and the new last one: nothing else.
        assert len(rendered) == 2 and rendered[-1] == "A new paragraph"


async def test_a_paragraph_that_never_ends_is_cut_and_drawn_on_without_a_gap() -> None:
    """A trace with no line breaks (the random-weight benchmark model writes one) would
    make every append lay out the whole paragraph again: it is cut at a space, and the
    rest is drawn on the next line, as the paragraph's own wrap would go on."""
    words = " ".join(f"word{n}" for n in range(2000))  # ~17,000 characters, one paragraph
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = MarkdownText()
        await app.query_one(VerticalScroll).mount(widget)
        for n in range(0, len(words), 40):
            widget.append(words[n : n + 40])
        await pilot.pause()
        assert widget.source == words
        with counting_renders() as rendered:
            widget.append(" more")
            await pilot.pause()
        assert len(rendered) == 1 and len(rendered[0]) <= markdown.LONG_PARAGRAPH + 50
        lines = drawn(widget)
        assert "" not in lines  # no blank line where a cut was made
        assert " ".join(" ".join(lines).split()) == words + " more"
        # Once the stream ends, the paragraph wraps as one, as if given whole.
        whole = MarkdownText(words + " more")
        await app.query_one(VerticalScroll).mount(whole)
        widget.settle()
        await pilot.pause()
        assert drawn(widget) == drawn(whole) and len(whole._blocks) == 0


async def test_a_width_change_lays_everything_out_again() -> None:
    app = Host(DOCUMENT)
    async with app.run_test(size=SIZE) as pilot:
        widget = app.query_one(MarkdownText)
        wide = drawn(widget)
        await pilot.resize_terminal(50, 40)
        await pilot.pause()
        narrow = drawn(widget)
        assert len(narrow) > len(wide)
        assert max(len(line) for line in narrow) <= 50


async def test_the_theme_colours_the_markdown() -> None:
    app = Host("## A heading\n\nText with `code`")
    async with app.run_test(size=SIZE) as pilot:
        widget = app.query_one(MarkdownText)
        dark = widget.render_line(0)
        app.theme = "textual-light"
        await pilot.pause()
        light = widget.render_line(0)
        assert dark.text == light.text
        assert [s.style for s in dark] != [s.style for s in light]


async def test_a_mouse_selection_gets_the_text_as_drawn() -> None:
    app = Host(R1_ANSWER)
    async with app.run_test(size=SIZE):
        widget = app.query_one(MarkdownText)
        everything = widget.get_selection(Selection(None, None))
        assert everything is not None
        text, _ = everything
        assert text.splitlines()[0].strip() == "17 × 23 = 391"
        assert "print(17 * 23)" in text


def test_a_theme_style_rich_cannot_read_is_left_out() -> None:
    look = markdown.look_for(
        "odd",
        {
            "markdown-h1-text-style": "none",
            "markdown-h2-text-style": "bold wavy",
            "text-primary": "#123456",
        },
        dark=True,
    )
    assert str(look.theme.styles["markdown.h1"]) == "none"
    assert str(look.theme.styles["markdown.h2"]) == "bold"
    assert str(look.theme.styles["markdown.table.header"]) == "bold #123456"


async def test_a_tail_shows_the_last_lines_and_stops_growing_until_shown_whole() -> None:
    """The live reasoning panel: only the last lines, so the screen does not lay out
    and scroll at every new line; shown whole again, it draws all of them."""
    app = Host(DOCUMENT)  # the whole text, drawn the ordinary way, to compare with
    async with app.run_test(size=SIZE) as pilot:
        whole = app.query_one(MarkdownText)
        widget = MarkdownText(tail=5)
        await app.query_one(VerticalScroll).mount(widget)
        layouts: list[bool] = []  # per append: whether it asked for a layout
        real = widget.refresh

        def spy(*regions: object, layout: bool = False, **kw: object) -> MarkdownText:
            layouts.append(layout)
            return real(*regions, layout=layout, **kw)  # type: ignore[arg-type]

        widget.refresh = spy  # type: ignore[method-assign]
        grown_at = None  # the append after which it was five lines tall
        marks = []  # how many refreshes there had been after each append
        for n, line in enumerate(DOCUMENT.splitlines(keepends=True)):
            widget.append(line)
            await pilot.pause()
            marks.append(len(layouts))
            if grown_at is None and widget.size.height == 5:
                grown_at = n
        everything = drawn(whole)
        assert widget.size.height == 5 and len(everything) > 50
        assert drawn(widget) == everything[-5:]
        # It lays out while it grows to five lines, then only repaints in place (the
        # append after the last growth still sees Textual's own refresh for the new size).
        assert grown_at is not None and len(marks) > 50
        assert any(layouts[: marks[grown_at]]) and not any(layouts[marks[grown_at + 1] :])
        selected = widget.get_selection(Selection(None, None))
        assert selected is not None and selected[0].splitlines() == everything[-5:]
        widget.show_tail(None)
        await pilot.pause()
        assert drawn(widget) == everything


@pytest.mark.parametrize("tail", [None, 5])
async def test_an_append_repaints_every_line_it_changed_and_the_screen_shows_them(
    tail: int | None,
) -> None:
    """An append repaints only from the first line of the last block that changed: what
    the screen shows (Textual's kept lines, composited) must still be the widget's text."""
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = MarkdownText(tail=tail)
        await app.query_one(VerticalScroll).mount(widget)
        partial = 0  # appends that repainted part of the widget, not all of it
        real = widget.refresh

        def spy(*regions: object, layout: bool = False, **kw: object) -> MarkdownText:
            nonlocal partial
            partial += bool(regions) and regions[0] != widget.region.reset_offset
            return real(*regions, layout=layout, **kw)  # type: ignore[arg-type]

        widget.refresh = spy  # type: ignore[method-assign]
        for piece in pieces(DOCUMENT[:700]):
            widget.append(piece)
            await pilot.pause()
            box = widget.content_region
            screen = app.screen._compositor.render_strips()
            shown = [
                screen[y].crop(box.x, box.right).text.rstrip() for y in range(box.y, box.bottom)
            ]
            assert shown == drawn(widget), widget.source
        assert partial > 20


def test_a_block_sets_what_rich_sets_and_shares_one_parser() -> None:
    """_Markdown skips Rich's __init__ (which builds a parser per Markdown): the same
    attributes and the same tokens, or a new Rich would draw our blocks wrong."""
    from rich.markdown import Markdown as RichMarkdown

    look = markdown.look_for("textual-dark", {}, True)
    ours, rich = markdown._Markdown(DOCUMENT, look), RichMarkdown(DOCUMENT)
    assert set(vars(ours)) == set(vars(rich)) | {"look"}
    assert [t.type for t in ours.parsed] == [t.type for t in rich.parsed]
    assert (ours.markup, ours.justify, ours.style, ours.hyperlinks) == (
        rich.markup,
        rich.justify,
        rich.style,
        rich.hyperlinks,
    )
    assert markdown_parser() is markdown_parser()
