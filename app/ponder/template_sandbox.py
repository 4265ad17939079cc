"""Render an untrusted Jinja chat template within limits of time and size.

A chat template comes from a downloaded GGUF or from a file the user names, and Jinja's
sandbox only stops it from reaching Python's internals. It does not stop it from running
for ever or filling memory: issue 13 found ``range(10**9)`` (OverflowError), two nested
``range(99999)`` loops (36 s, then MemoryError), string bombs (``'x' * 10**10``),
recursive macros (RecursionError) and ``{% include %}`` (TypeError: no loader), each a
traceback. This module renders under a budget and turns every failure into
:class:`TemplateFailure`, one line that says what went wrong.

The budget: a deadline (:data:`TIME_LIMIT`), and a bound on any string or list the
template builds (:func:`size_limit`: 1 MiB plus eight times the conversation, which no
real template comes near). It is enforced where sandboxed code can grow things: every
call (which is also how macros and ``range`` run), every filter, the operators that
multiply or join (``*``, ``**``, ``+``, ``%``, ``~``), every ``{{ }}`` output, dotted
assignment into a ``namespace()``, and the rendered text itself. ``range`` yields its
items lazily and checks the clock on each, so nested loops end at the deadline.
``include``, ``extends`` and ``import`` are refused before rendering: there is nothing
a chat template may load.

Hand-written rather than a library: none bounds Jinja's time and memory in-process, and
a child process per render would cost more than the render itself on every reply.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import wraps
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg

from ponder.errors import PonderError

TIME_LIMIT = 5.0  # seconds; real templates render in milliseconds
MAX_ITEMS = 100_000  # a range or a list the template builds (Jinja's own MAX_RANGE)
_BASE_SIZE = 1 << 20
_FORMAT_WIDTH = re.compile(r"%[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")


class TemplateFailure(Exception):
    """The template could not be rendered; ``str()`` is one line saying why."""


class _Refusal(TemplateFailure):
    """The template asked for more than the budget allows."""


def size_limit(context_chars: int) -> int:
    """The most characters any string the template builds may hold."""
    return _BASE_SIZE + 8 * context_chars


class _Budget:
    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.emitted = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Refusal(f"it ran for more than {self.seconds:g} s")

    def sized(self, value: Any) -> Any:
        if isinstance(value, str | bytes) and len(value) > self.limit:
            raise _Refusal(f"it built a string of more than {self.limit:,} characters")
        if isinstance(value, list | tuple | dict | set) and len(value) > MAX_ITEMS:
            raise _Refusal(f"it built a collection of more than {MAX_ITEMS:,} items")
        return value

    def emit(self, value: Any) -> Any:
        self.tick()
        if isinstance(value, str):
            self.emitted += len(value)
            if self.emitted > self.limit:
                raise _Refusal(f"it wrote more than {self.limit:,} characters")
        return value

    def check_growth(self, size: int) -> None:
        if size > self.limit:
            raise _Refusal(f"it would build a string of {size:,} characters, past the limits")

    def check_args(self, args: Iterable[Any]) -> None:
        for arg in args:
            if type(arg) is int and abs(arg) > self.limit:
                raise _Refusal(f"it passed {arg:,} to a function, past the limits")
            self.sized(arg)


def _growth(name: str, target: Any, args: tuple[Any, ...]) -> int:
    """How long the string a call would build is, for the calls that can multiply one:
    ``replace`` (each match), ``join`` (every item), ``expandtabs`` (each tab), ``format``
    (its widths); 0 for everything else."""
    if not isinstance(target, str):
        return 0
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str):
        old, new = args[0], str(args[1])
        count = target.count(old) if old else len(target) + 1
        return len(target) + count * len(new)
    if name == "join" and args and isinstance(args[0], list | tuple):
        items = args[0]
        return sum(len(str(i)) for i in items) + len(target) * len(items)
    if name == "expandtabs":
        size = args[0] if args and type(args[0]) is int else 8
        return len(target) + target.count("\t") * max(size, 0)
    if name in ("format", "format_map"):
        widths = [int(w) for w in re.findall(r"\{[^{}]*?(\d+)[^{}]*\}", target)]
        return len(target) + sum(widths)
    return 0


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


class _Generator(CodeGenerator):
    """Jinja's code generator, with ``a ~ b ~ ...`` joined under the budget."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.limited_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _limited_namespace(budget: _Budget) -> type[Namespace]:
    """``namespace()`` whose dotted assignments are sized (``ns.s = ns.s ~ ns.s``)."""

    class LimitedNamespace(Namespace):
        def __setitem__(self, name: str, value: Any) -> None:
            super().__setitem__(name, budget.sized(value))

    return LimitedNamespace


class _Environment(ImmutableSandboxedEnvironment):
    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def __init__(self, budget: _Budget) -> None:
        super().__init__(trim_blocks=True, lstrip_blocks=True, finalize=budget.emit)
        self.budget = budget
        self.filters = {name: self._limited(f) for name, f in self.filters.items()}
        self.globals["range"] = self._range
        self.globals["namespace"] = _limited_namespace(budget)

    def _limited(self, func: Callable[..., Any]) -> Callable[..., Any]:
        budget = self.budget
        skip = 0 if _PassArg.from_obj(func) is None else 1  # the context Jinja passes first
        name = func.__name__.removeprefix("do_")

        @wraps(func)
        def limited(*args: Any, **kwargs: Any) -> Any:
            budget.tick()
            budget.check_args(args[skip:])
            budget.check_args(kwargs.values())
            if len(args) > skip:
                budget.check_growth(_growth(name, args[skip], args[skip + 1 :]))
            return budget.sized(func(*args, **kwargs))

        return limited

    def _range(self, *args: int) -> Iterator[int]:
        items = range(*args)
        if len(items) > MAX_ITEMS:
            raise _Refusal(f"it asked for a range of {len(items):,} items")
        budget = self.budget
        for item in items:
            budget.tick()
            yield item

    def limited_concat(self, values: Iterable[Any]) -> str:
        parts = [str(v) for v in values]
        if sum(len(p) for p in parts) > self.budget.limit:
            raise _Refusal(f"it built a string of more than {self.budget.limit:,} characters")
        return "".join(parts)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = self.budget
        budget.tick()
        if operator == "**" and _big_power(left, right):
            raise _Refusal(f"it raised {left!r} to the power {right!r}")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                size = _length(seq)
                if size is not None and type(n) is int and size * n > budget.limit:
                    raise _Refusal(f"it built a string of more than {budget.limit:,} characters")
        if operator == "%" and isinstance(left, str):
            for width in _FORMAT_WIDTH.finditer(left):
                for part in width.groups():
                    if part == "*" or (part and int(part) > budget.limit):
                        raise _Refusal("it used a %-format width past the limits")
        return budget.sized(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = __self.budget
        budget.tick()
        budget.check_args(args)
        budget.check_args(kwargs.values())
        name = getattr(__obj, "__name__", "")
        budget.check_growth(_growth(name, getattr(__obj, "__self__", None), args))
        return budget.sized(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.budget.tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.budget.tick()
        return super().getitem(obj, argument)


def _big_power(base: Any, exponent: Any) -> bool:
    if type(base) is not int or type(exponent) is not int:
        return False
    return abs(base) > 1 and exponent * abs(base).bit_length() > 4096


_LOADING = (nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)
_TAGS = {nodes.Include: "include", nodes.Extends: "extends"}


def _refuse_loading(tree: nodes.Template) -> None:
    for node in tree.find_all(_LOADING):
        tag = _TAGS.get(type(node), "import")
        raise TemplateFailure(
            f"it uses {{% {tag} %}} (line {node.lineno}), which loads nothing here"
        )


def render(
    template: str,
    context: Mapping[str, Any],
    *,
    context_chars: int,
    seconds: float | None = None,
) -> str:
    """Render ``template`` with ``context`` under the budget; TemplateFailure otherwise.

    ``context_chars`` is the size of the conversation, which sets the size limit.
    A :class:`~ponder.errors.PonderError` raised from a function in ``context`` (the
    template's ``raise_exception``) passes through as it is.
    """
    budget = _Budget(size_limit(context_chars), TIME_LIMIT if seconds is None else seconds)
    env = _Environment(budget)
    try:
        tree = env.parse(template)
        _refuse_loading(tree)
        compiled = env.from_string(tree)
        out: list[str] = []
        size = 0
        for chunk in compiled.generate(**context):
            size += len(chunk)
            if size > budget.limit:
                raise _Refusal(f"it wrote more than {budget.limit:,} characters")
            budget.tick()
            out.append(chunk)
        text = "".join(out)
    except TemplateFailure:
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateFailure(f"line {exc.lineno}: {_one_line(exc.message or str(exc))}") from None
    except RecursionError:
        raise TemplateFailure("it recursed too deeply (a macro that calls itself?)") from None
    except MemoryError:
        raise TemplateFailure("it ran out of memory") from None
    except PonderError:  # raise_exception(): the template refuses the conversation
        raise
    except Exception as exc:  # anything else the sandboxed code raises is the template's
        raise TemplateFailure(_one_line(f"{type(exc).__name__}: {exc}")) from None
    _check_text(text)
    return text


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TemplateFailure(
            f"its output holds a lone surrogate (U+{ord(text[exc.start]):04X}) "
            f"at character {exc.start:,}, which is not text"
        ) from None


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:197] + "..."
