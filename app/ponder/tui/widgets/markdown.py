"""Markdown that costs the same to update however long it grows.

Why not Textual's ``Markdown`` widget: it makes a widget of every block, every table
cell and every code block, and every screen update lays all of them out again. With
bench/bench_tui.py on 2 cores the scripted answer ended with about 900 widgets, each
update cost 10-500 ms, and a keystroke waited up to half a second
(docs/architecture.md#tui-streaming).

Here the text is cut into its top-level blocks with markdown-it, configured as Rich's
``Markdown`` configures it, so both see the same blocks (markdown-it-py comes with
Rich, which requires it). Each block is rendered by
Rich once per width and theme and its lines are kept. :class:`MarkdownText` is one
widget that draws those lines with Textual's line API (``render_line``), a blank line
between blocks, as Rich itself spaces them. Only the last block can still change as
text streams in: appending re-renders that block, and repaints only its lines unless
its height changed, so the work per update is bounded by one block, not by the
text. A paragraph that grows past ``LONG_PARAGRAPH`` characters (a trace that never
breaks its lines) is cut at a space into a finished block and a continuation drawn
right under it, with no blank line between, so that bound holds for it too; when the
stream ends, :meth:`MarkdownText.settle` lays the text out once more without the
cuts. Lines once drawn are kept too (a few hundred per widget), so scrolling back
through a long chat costs a lookup per line.

:meth:`MarkdownText.show_tail` draws only the last few lines (the chat's live reasoning
panel, while it streams): the widget's height then stops growing at that many lines,
and a new line repaints it in place instead of making Textual lay out and scroll the
whole screen, which on 2 cores cost ~30 ms of the event loop about once a second.

Hand-written, so it must do what Textual's widget did for free: mouse selection
(``get_selection`` and the selection highlight) and following the Textual theme (the
headings, inline code, lists and tables take the theme's colours).
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from rich.console import Console, ConsoleOptions
from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

from ponder.tui.widgets.markdown_look import Look, _Markdown, look_for, markdown_parser

STRIP_CACHE = 256  # drawn lines kept per widget (a screenful or two, with room to scroll)

_LINE_BREAK = re.compile(r"\r\n?|\n")  # what markdown-it counts as a line break


def block_starts(parser: MarkdownIt, text: str) -> list[int]:
    """The offsets in ``text`` where its top-level blocks start, in order."""
    first_lines = sorted(
        {
            token.map[0]
            for token in parser.parse(text)
            if token.level == 0 and token.map is not None and token.nesting >= 0
        }
    )
    line_starts = [0, *(match.end() for match in _LINE_BREAK.finditer(text))]
    return [line_starts[n] for n in first_lines if n < len(line_starts)]


# A paragraph still streaming is cut once it is this long; the cut leaves this much
# of it to grow on (its layout is redone at every append).
LONG_PARAGRAPH = 1200
PARAGRAPH_KEEP = 400


@dataclass(eq=False)
class Block:
    """One top-level Markdown block, rendered by Rich once per width and look."""

    source: str
    joined: bool = False  # continues the paragraph before it: no blank line between
    _key: tuple[int, str] | None = field(default=None, repr=False)
    _lines: list[list[Segment]] = field(default_factory=list, repr=False)

    def lines(self, console: Console, options: ConsoleOptions, look: Look) -> list[list[Segment]]:
        key = (options.max_width, look.key)
        if self._key != key:
            with console.use_theme(look.theme):
                lines = console.render_lines(_Markdown(self.source, look), options, pad=False)
            # The blank line between blocks is MarkdownText's to draw.
            while lines and _blank(lines[-1]):
                lines.pop()
            while lines and _blank(lines[0]):
                del lines[0]
            self._key, self._lines = key, lines
        return self._lines


def _first_change(old: Block, new: Block) -> int:
    """The first of ``new``'s lines that differs from ``old``'s as last drawn (0 when
    ``old`` was drawn at another width or look)."""
    if old._key is None or old._key != new._key:
        return 0
    for n, (a, b) in enumerate(zip(old._lines, new._lines, strict=False)):
        if a != b:
            return n
    return min(len(old._lines), len(new._lines))


def _blank(line: list[Segment]) -> bool:
    return all(
        not seg.text.strip() and (seg.style is None or seg.style.bgcolor is None) for seg in line
    )


class MarkdownText(Widget):
    """Markdown drawn line by line from its blocks' kept lines; :meth:`append` streams."""

    DEFAULT_CSS = """
    MarkdownText {
        height: auto;
        padding: 0 2;
    }
    """

    def __init__(
        self, source: str = "", *, tail: int | None = None, classes: str | None = None
    ) -> None:
        super().__init__(classes=classes)
        self._show = tail  # draw only the last this many lines (None: all of them)
        self._look: Look | None = None
        self._source: list[str] = []
        self._blocks: list[Block] = []  # finished: more text cannot change them
        self._tail = Block("")  # the last block: it may still grow
        # Where each finished block starts, in lines, as laid out at ``_laid_out``.
        self._laid_out: tuple[int, str] | None = None
        self._starts: list[int] = []
        self._end = 0  # the line after the last laid-out finished block
        self._height = 0  # as last measured
        self._options: ConsoleOptions | None = None  # Rich's, at the laid-out width
        # Drawn lines, for as long as the width, the look and the widget's style last.
        self._strips: LRUCache[int, Strip] = LRUCache(STRIP_CACHE)
        self._strip_stamp: tuple[int, str, Style] | None = None
        self._drawn_to = 0  # no line at or past this one is kept
        # Long paragraphs are cut while text streams in (a widget made with its whole
        # text is not streaming).
        self._cuts = not source
        self.append(source)

    @property
    def source(self) -> str:
        """Everything appended so far (what is drawn)."""
        return "".join(self._source)

    def show_tail(self, lines: int | None) -> None:
        """Draw only the last ``lines`` lines, or (None) all of them again."""
        if lines == self._show:
            return
        self._show = lines
        self._strips.clear()
        self._drawn_to = 0
        self.refresh(layout=True)

    def _tail_offset(self) -> int:
        """The first line drawn, in the whole text's lines."""
        return max(0, self._height - self._show) if self._show is not None else 0

    def append(self, text: str) -> None:
        """Add ``text`` at the end: the blocks it finishes are kept, the last one redrawn."""
        if not text:
            return
        self._source.append(text)
        tail = self._tail.source + text
        starts = block_starts(markdown_parser(), tail)
        finished = len(starts) > 1
        joined = self._tail.joined
        if finished:
            starts[0] = 0  # blank lines before the first block ride with it
            for n, (a, b) in enumerate(itertools.pairwise(starts)):
                self._blocks.append(Block(tail[a:b], joined=joined and n == 0))
            tail = tail[starts[-1] :]
            joined = False
        elif self._cuts and len(tail) > LONG_PARAGRAPH and self._is_paragraph(tail):
            cut = tail.rfind(" ", 0, len(tail) - PARAGRAPH_KEEP) + 1
            # Not inside inline code or emphasis, which would then draw plain.
            if cut > 0 and all(tail.count(mark, 0, cut) % 2 == 0 for mark in ("`", "**", "$")):
                self._blocks.append(Block(tail[:cut], joined=joined))
                tail, joined, finished = tail[cut:], True, True
        old_start, old_height, old_tail = self._tail_start(), self._height, self._tail
        self._tail = Block(tail, joined=joined)
        for y in range(old_start, self._drawn_to):
            self._strips.discard(y)  # the old last block's lines; finished lines stay
        self._drawn_to = min(self._drawn_to, old_start)
        width = self.size.width if self.is_mounted else 0
        if width <= 0:
            self.refresh(layout=True)
            return
        shown = self.get_content_height(self.size, self.size, width)
        if self._show is not None and (finished or self._height != old_height):
            # A tail's lines all move up: repaint them; lay out only while it grows.
            self.refresh(layout=shown != min(old_height, self._show))
            return
        if finished or self._height != old_height:
            self.refresh(layout=True)
            return
        # Same height: repaint from the first line of the last block that changed (most
        # often only its last line), which is where the compositor spends its time.
        y = old_start + _first_change(old_tail, self._tail) - self._tail_offset()
        if (y := max(0, y)) < shown:
            self.refresh(Region(0, y, width, shown - y))

    def settle(self) -> None:
        """The text is complete: lay it out again without the cuts made while it streamed
        (once; a paragraph then wraps as one)."""
        self._cuts = False
        if not (self._tail.joined or any(block.joined for block in self._blocks)):
            return
        source = self.source
        self._source, self._blocks, self._tail = [], [], Block("")
        self._laid_out, self._starts, self._end = None, [], 0
        self._strips.clear()
        self._drawn_to = 0
        self.append(source)
        self.refresh(layout=True)

    def _is_paragraph(self, text: str) -> bool:
        tokens = markdown_parser().parse(text)
        return bool(tokens) and tokens[0].type == "paragraph_open"

    # -- layout and drawing (Textual's line API) ---------------------------------------

    def _layout(self, width: int) -> list[list[Segment]]:
        """Lay the finished blocks out at ``width`` (only new ones, unless the width or the
        look changed); the last block's lines."""
        look = self._current_look()
        if self._laid_out != (width, look.key):
            self._laid_out, self._starts, self._end = (width, look.key), [], 0
            self._options = self.app.console_options.update(
                width=width, height=None, highlight=False
            )
        console, options = self.app.console, self._options
        assert options is not None
        for block in self._blocks[len(self._starts) :]:
            start = self._end + (0 if block.joined else 1) if self._starts else 0
            self._starts.append(start)
            self._end = start + len(block.lines(console, options, look))
        return self._tail.lines(console, options, look) if self._tail.source.strip() else []

    def _tail_start(self) -> int:
        return self._end + (0 if self._tail.joined else 1) if self._starts else 0

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if width <= 0:
            return 0
        tail = self._layout(width)
        self._height = self._tail_start() + len(tail) if tail else self._end
        return min(self._height, self._show) if self._show is not None else self._height

    def _segments(self, y: int) -> list[Segment]:
        """Line ``y`` as Rich laid it out ([] between blocks and past the end)."""
        tail = self._layout(self.size.width)
        start = self._tail_start()
        if tail and y >= start:
            return tail[y - start] if y - start < len(tail) else []
        if not self._starts or y >= self._end:
            return []
        i = bisect.bisect_right(self._starts, y) - 1
        assert self._options is not None and self._look is not None
        lines = self._blocks[i].lines(self.app.console, self._options, self._look)
        return lines[y - self._starts[i]] if y - self._starts[i] < len(lines) else []

    def render_lines(self, crop: Region) -> list[Strip]:
        # Textual asks for the lines of a region in one go: work out what they share
        # once (the widget's style walks its ancestors), not once a line.
        stamp = (self.size.width, self._current_look().key, self.rich_style)
        if stamp != self._strip_stamp:
            self._strips.clear()
            self._drawn_to = 0
            self._strip_stamp = stamp
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        if self._strip_stamp is None:
            self._strip_stamp = (self.size.width, self._current_look().key, self.rich_style)
        width, _, style = self._strip_stamp
        selection = self.text_selection
        keep = selection is None and self._show is None  # a tail's lines move: not kept
        if keep and (cached := self._strips.get(y)) is not None:
            return cached
        segments = self._segments(y + self._tail_offset())
        strip = Strip(segments).crop_extend(0, width, style).apply_style(style)
        if selection is not None and (span := selection.get_span(y)) is not None:
            start, end = span
            end = width if end == -1 else end
            before, picked, after = strip.divide([start, end, width])
            picked = picked.apply_style(self.screen.get_component_rich_style("screen--selection"))
            strip = Strip.join([before, picked, after])
        strip = strip.apply_offsets(0, y)
        if keep:
            self._strips.set(y, strip)
            self._drawn_to = max(self._drawn_to, y + 1)
        return strip

    # -- selection --------------------------------------------------------------------

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The text under a mouse selection, as drawn."""
        width = self.size.width
        if width <= 0:
            return None
        tail = self._layout(width)
        assert self._options is not None and self._look is not None
        rows: list[str] = []
        for block in self._blocks:
            if rows and not block.joined:
                rows.append("")
            lines = block.lines(self.app.console, self._options, self._look)
            rows.extend(_plain(line) for line in lines)
        if tail:
            if rows and not self._tail.joined:
                rows.append("")
            rows.extend(_plain(line) for line in tail)
        return selection.extract("\n".join(rows[self._tail_offset() :])), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    def _current_look(self) -> Look:
        app = self.app
        key = f"{app.theme}:{app.current_theme.dark}"
        if self._look is None or self._look.key != key:
            self._look = look_for(app.theme, app.theme_variables, app.current_theme.dark)
        return self._look


def _plain(line: list[Segment]) -> str:
    return "".join(seg.text for seg in line).rstrip()
