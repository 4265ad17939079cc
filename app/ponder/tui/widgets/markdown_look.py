"""How :class:`~ponder.tui.widgets.markdown.MarkdownText` draws a block: Rich's Markdown
in the colours of the Textual theme, with framed code blocks and tables.

Split from the widget's module, which keeps the cutting, the layout and the drawing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import ClassVar

from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.errors import StyleSyntaxError
from rich.markdown import CodeBlock, MarkdownElement, TableElement
from rich.markdown import Markdown as RichMarkdown
from rich.style import Style
from rich.syntax import Syntax
from rich.table import Table
from rich.theme import Theme
from textual.color import Color, ColorParseError

_HEX = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class Look:
    """How the Markdown is drawn: Rich styles from the Textual theme, and the code theme."""

    key: str
    theme: Theme
    code_theme: str
    code_background: str | None  # behind code blocks (None: the code theme's own)


def look_for(name: str, variables: dict[str, str], dark: bool) -> Look:
    """Rich's ``markdown.*`` styles in the colours of the Textual theme ``name``."""

    def color(var: str) -> str:
        value = variables.get(var, "")
        return value if _HEX.fullmatch(value) else ""

    def blend(base: str, over: str, amount: float) -> str:
        try:
            return Color.parse(base).blend(Color.parse(over), amount).hex
        except ColorParseError:
            return ""

    code_bg = blend(color("background"), color("warning"), 0.1) if color("background") else ""
    code = " ".join(part for part in (color("text-warning"), code_bg and f"on {code_bg}") if part)
    styles = {
        "markdown.code": code or "bold",
        "markdown.block_quote": color("text-primary") or "italic",
        "markdown.list": color("text-primary"),
        "markdown.item.bullet": f"bold {color('text-primary')}",
        "markdown.item.number": color("text-primary"),
        "markdown.hr": "dim",
        "markdown.link": color("text-primary"),
        "markdown.link_url": f"underline {color('text-primary')}",
        "markdown.table.border": "dim",
        "markdown.table.header": f"bold {color('text-primary')}",
    }
    for level in range(1, 7):
        text_style = variables.get(f"markdown-h{level}-text-style", "bold")
        styles[f"markdown.h{level}"] = f"{text_style} {color(f'markdown-h{level}-color')}"
    return Look(
        key=f"{name}:{dark}",
        theme=Theme({name: _style(words) for name, words in styles.items()}),
        code_theme="monokai" if dark else "default",
        code_background=color("surface") or None,  # a panel a shade off the screen's
    )


def _style(words: str) -> str:
    """``words`` less any Rich cannot parse ("none" beside a colour, a CSS-only style)."""
    kept = []
    for word in words.split():
        try:
            Style.parse(word)
        except StyleSyntaxError:
            continue
        if word != "none":
            kept.append(word)
    return " ".join(kept) or "none"


class _CodeBlock(CodeBlock):
    """A fenced or indented code block on the look's background, padded like Textual's."""

    @classmethod
    def create(cls, markdown: RichMarkdown, token: Token) -> _CodeBlock:
        lexer = (token.info or "").partition(" ")[0] or "text"
        assert isinstance(markdown, _Markdown)
        block = cls(lexer, markdown.code_theme)
        block.background = markdown.look.code_background
        return block

    background: str | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        code = str(self.text).rstrip()
        yield Syntax(
            code,
            self.lexer_name,
            theme=self.theme,
            word_wrap=True,
            padding=(1, 2),
            background_color=self.background,
        )


class _Table(TableElement):
    """A table with a visible frame and a rule under its header."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = Table(box=box.ROUNDED, border_style="markdown.table.border")
        if self.header is not None and self.header.row is not None:
            for cell in self.header.row.cells:
                heading = cell.content.copy()
                heading.stylize("markdown.table.header")
                table.add_column(heading, justify=cell.justify)
        if self.body is not None:
            for row in self.body.rows:
                table.add_row(*(cell.content for cell in row.cells))
        yield table


class _Markdown(RichMarkdown):
    """Rich's Markdown with Ponder's code blocks and tables."""

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **RichMarkdown.elements,
        "fence": _CodeBlock,
        "code_block": _CodeBlock,
        "table_open": _Table,
    }

    def __init__(self, source: str, look: Look) -> None:
        # Rich's own __init__ builds a new markdown-it parser for every Markdown (about a
        # millisecond here), and a streaming block is made anew at every frame: the same
        # attributes, parsed with one shared parser. tests/tui/test_markdown.py checks
        # that they stay the attributes Rich sets.
        self.markup = source
        self.parsed = markdown_parser().parse(source)
        self.code_theme = look.code_theme
        self.justify = None
        self.style = "none"
        self.hyperlinks = True
        self.inline_code_lexer = None
        self.inline_code_theme = look.code_theme
        self.look = look


@functools.cache
def markdown_parser() -> MarkdownIt:
    """The parser Rich's ``Markdown`` builds for itself (CommonMark, tables,
    strikethrough), made once: parsing keeps no state in it."""
    return MarkdownIt().enable("strikethrough").enable("table")
