"""Flag types and groups shared by the commands, and the sampling flags from ``ponder.sampling``.

Every sampler option in :data:`ponder.sampling.OPTIONS` becomes one ``ponder run``
flag with the option's name, type, help and bounds, so a new sampling option needs
no change here. A value out of bounds is one line naming the flag and saying what
to type instead, exit 2:

    ponder: error: --temperature 5 is out of range — use a value from 0 to 2
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ponder.errors import UsageError
from ponder.sampling import OPTIONS, Number, Option

F = TypeVar("F", bound=Callable[..., Any])

POSITIVE_HINT = "use a whole number of at least 1"

if TYPE_CHECKING:  # click 8.5 types ParamType by its value; older clicks cannot subscript it
    IntType = click.ParamType[int, Any]
    NumberType = click.ParamType[Number, Any]
else:
    IntType = NumberType = click.ParamType


class OrderedGroup(click.Group):
    """A group whose --help lists its commands in the order they were added."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def flag_name(param: click.Parameter | None) -> str:
    """How the user typed the option: its long form ("--limit" rather than "-n")."""
    if param is None:
        return "value"
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return param.human_readable_name


class PositiveInt(IntType):
    """A whole number of at least 1: --ctx, --threads, --limit."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value))
            except ValueError:
                raise UsageError(
                    f"{flag_name(param)} {value} is not a whole number", hint=POSITIVE_HINT
                ) from None
        if number <= 0:
            raise UsageError(f"{flag_name(param)} {value} must be positive", hint=POSITIVE_HINT)
        return number


class IntBetween(IntType):
    """A whole number from ``low`` to ``high``: --think-budget, --votes."""

    name = "integer"

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        hint = f"give a whole number from {self.low:,} to {self.high:,}"
        try:
            number = int(str(value))
        except ValueError:
            message = f"{flag_name(param)} {value} is not a whole number"
            raise UsageError(message, hint=hint) from None
        if not self.low <= number <= self.high:
            raise UsageError(f"{flag_name(param)} {value} is out of range", hint=hint)
        return number


class SamplingValue(NumberType):
    """One sampler option's value, checked against the option's own bounds."""

    def __init__(self, option: Option) -> None:
        self.option = option
        self.name = "integer" if option.kind is int else "number"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Number:
        opt = self.option
        text = str(value)
        try:
            number: Number = int(text) if opt.kind is int else float(text)
        except ValueError:
            kind = "a whole number" if opt.kind is int else "a number"
            raise UsageError(f"{opt.flag} {text} is not {kind}", hint=opt.advice()) from None
        if isinstance(number, float) and not math.isfinite(number):
            raise UsageError(f"{opt.flag} {text} is not a finite number", hint=opt.advice())
        try:
            return opt.check(number)
        except ValueError:
            if _positive(opt):
                raise UsageError(f"{opt.flag} {text} must be positive", hint=opt.advice()) from None
            raise UsageError(f"{opt.flag} {text} is out of range", hint=opt.advice()) from None


def _positive(opt: Option) -> bool:
    """A whole number whose only bound is "at least 1" (--max-tokens)."""
    return opt.kind is int and opt.ge == 1 and opt.gt is None and opt.le is None


def _help(opt: Option) -> str:
    """The option's help and its range: "randomness; ... (0–2)" (no space to wrap at)."""
    return f"{opt.help} ({opt.range_text.replace(' – ', '–')})"


def sampling_options(command: F) -> F:
    """One click option per sampler option, in the order ``ponder.sampling`` lists them."""
    for opt in reversed(OPTIONS):
        command = click.option(
            opt.flag,
            opt.name,
            type=SamplingValue(opt),
            default=None,
            metavar="N" if opt.kind is int else "X",
            help=_help(opt),
        )(command)
    return command


def sampling_values(params: Mapping[str, Any]) -> dict[str, Number | None]:
    """The sampling flags among a command's parameters: every option, None when not given."""
    return {opt.name: params.get(opt.name) for opt in OPTIONS}


def exclusive(ctx: click.Context, flags: Mapping[str, bool]) -> None:
    """At most one of these flags (by their spelling, e.g. ``"--json"``) may be given."""
    used = [name for name, given in flags.items() if given]
    if len(used) > 1:
        raise click.UsageError(f"{' and '.join(used)} cannot be used together", ctx=ctx)
