"""Valid ranges of config and profile fields, declared once beside each field as its type.

A field annotated ``batch_size: Count = 128`` holds an ``int`` that must be >= 1; the run checks
every selected baseline's config and the profile when it makes its plan (:func:`check`), so a
bad value is a usage error naming the field, the value and the valid range before any cell
starts, never a failed cell. ``Literal[...]`` fields are checked against their options too. A
subclass that only changes a default keeps its base's range (the range is looked up through the
class's bases), and a plugin's config gets the same check by using these types.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from dataclasses import dataclass
from typing import Annotated, Any


@dataclass(frozen=True)
class Range:
    """``low <= value <= high`` (either bound open or absent)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: Any) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        high = self.high
        return high is None or (value < high if self.high_open else value <= high)

    def __str__(self) -> str:
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return (
            f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
            f"{')' if self.high_open else ']'}"
        )


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]

    def contains(self, value: Any) -> bool:
        return value in self.options

    def __str__(self) -> str:
        return f"one of {', '.join(map(str, self.options))}"


Count = Annotated[int, Range(low=1)]  # sizes, counts, periods
NonNegativeInt = Annotated[int, Range(low=0)]  # counts that may be 0 (padding, warm-up steps)
Positive = Annotated[float, Range(low=0, low_open=True)]  # learning rates, temperatures, times
NonNegative = Annotated[float, Range(low=0)]  # loss weights, noise scales
Fraction = Annotated[float, Range(0, 1, low_open=True)]  # soft-update rates (taus): (0, 1]
Discount = Annotated[float, Range(0, 1)]
Beta = Annotated[float, Range(0, 1, high_open=True)]  # Adam's beta1


class RangeError(ValueError):
    """A config or profile field holds a value outside its declared range."""


def field_ranges(cls: type) -> dict[str, Range | Choice]:
    """Field name -> declared range of a dataclass, the most derived declaration with one."""
    found: dict[str, Range | Choice] = {}
    for klass in cls.__mro__:
        own = inspect.get_annotations(klass)
        if not own or not dataclasses.is_dataclass(klass):
            continue
        hints = typing.get_type_hints(klass, include_extras=True)
        for name in own:
            if name not in found and (declared := _range_of(hints[name])) is not None:
                found[name] = declared
    return found


def _range_of(hint: Any) -> Range | Choice | None:
    if typing.get_origin(hint) is Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, Range | Choice)), None)
    if typing.get_origin(hint) is typing.Literal:
        return Choice(typing.get_args(hint))
    return None


def check(instance: Any, owner: str) -> None:
    """Raise :class:`RangeError` naming every field of ``instance`` outside its range."""
    bad = [
        f"{name}={getattr(instance, name)!r} (valid: {declared})"
        for name, declared in field_ranges(type(instance)).items()
        if getattr(instance, name) is not None and not declared.contains(getattr(instance, name))
    ]
    if bad:
        raise RangeError(f"{owner}: out of range: {'; '.join(bad)}")
