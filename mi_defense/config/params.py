"""Declared constraints on settings, in the manner of scikit-learn's parameter validation.

A settings class declares what each field must be, ``_constraints = {field: constraint}``,
and ``check_fields`` checks them all, so every setting is refused the same way: one line,
``"<where>: <name> must be <description>, got <value>"`` (an ``Options`` field: ``"<where>:
<name> '<value>' unknown; use a, b or c"``). Checks that tie several fields together stay
in the class's ``validate``.

* ``Interval(int | float, left, right, closed=...)``: a number (never a bool) in a range;
  ``float`` accepts ints too, and a bound of None is open (a finite number is still required).
* ``Whole(low)``: a whole number ``>= low``.
* ``Options(choices)``: one of a fixed set of values.
* ``Satisfies(test, description)``: anything else that one predicate decides.
* ``OrNone(c)`` and ``AllOf(c1, c2, ...)``: None or ``c``; every one of them, first failure reported.

Constraints shared by several settings are defined here once (``EPSILON``: every privacy
budget, of DP-FRePo, DP-SGD and the canary audits).
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Optional

from mi_defense.errors import UserError

__all__ = ["AllOf", "Constraint", "EPSILON", "FINITE_POSITIVE", "Interval", "NONNEG", "OrNone", "Options", "POSITIVE",
           "POSITIVE_WHOLE", "Satisfies", "Whole", "check_fields", "choice_list"]


def choice_list(choices: Iterable) -> str:
    """``a, b or c``."""
    names = [str(c) for c in choices]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


class Constraint:
    """What a value must be: ``accepts`` decides, ``description`` completes "must be ..."."""

    description = "valid"

    def accepts(self, value) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def coerce(self, value):
        """``value`` as the type this constraint holds (a defense spec's ``8`` for a float), or unchanged."""
        return value

    def message(self, value, name: str, where: str = "") -> str:
        return f"{where + ': ' if where else ''}{name} must be {self.description}, got {value!r}"

    def check(self, value, name: str, where: str = "") -> None:
        """Raise ``UserError`` (one line) unless ``value`` is accepted."""
        if not self.accepts(value):
            raise UserError(self.message(value, name, where))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


def _number(value, kind) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind is int else isinstance(value, (int, float))


class Interval(Constraint):
    """A number of ``kind`` (``int``: whole numbers; ``float``: any int or float) between
    ``left`` and ``right`` (None: unbounded on that side, but finite); ``closed`` is
    ``"both"``, ``"left"``, ``"right"`` or ``"neither"``."""

    def __init__(self, kind, left=None, right=None, closed: str = "both", description: Optional[str] = None):
        if kind not in (int, float) or closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"Interval({kind!r}, closed={closed!r})")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed
        self.description = description or self._describe()

    def _describe(self) -> str:
        lo_in, hi_in = self.closed in ("both", "left"), self.closed in ("both", "right")
        noun = "whole number" if self.kind is int else "number"
        if self.right is None:
            if self.left is None:
                return f"a finite {noun}"
            if self.left == 0 and not lo_in:
                return "a positive whole number" if self.kind is int else "a positive number"
            return f"a {'' if self.kind is int else 'finite '}{noun} {'>=' if lo_in else '>'} {self.left:g}"
        if self.left is None:
            return f"a {noun} {'<=' if hi_in else 'below'} {self.right:g}"
        if not lo_in and not hi_in:
            return f"a {noun} strictly between {self.left:g} and {self.right:g}"
        return f"a {noun} in {'[' if lo_in else '('}{self.left:g}, {self.right:g}{']' if hi_in else ')'}"

    def accepts(self, value) -> bool:
        if not _number(value, self.kind) or not -math.inf < value < math.inf:  # NaN fails both
            return False
        lo_in, hi_in = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.left is not None and not (value >= self.left if lo_in else value > self.left):
            return False
        return self.right is None or (value <= self.right if hi_in else value < self.right)

    def coerce(self, value):
        try:
            x = float(value)
        except (TypeError, ValueError):
            return value
        if self.kind is float:
            return x
        return int(x) if x.is_integer() else value


class Whole(Interval):
    """A whole number ``>= low`` (an ``int``, not a bool)."""

    def __init__(self, low: int = 0, description: Optional[str] = None):
        super().__init__(int, low, None, closed="left", description=description or f"a whole number >= {low}")


class Options(Constraint):
    """One of ``choices``; with ``also=(test, text)``, anything ``test`` accepts as well (``text`` names it)."""

    def __init__(self, choices: Iterable, also: Optional[tuple] = None):
        self.choices = tuple(choices)
        self.also = also
        names = list(self.choices) + ([also[1]] if also else [])
        self.description = "one of " + choice_list(names)
        self._use = choice_list(names)

    def accepts(self, value) -> bool:
        try:
            if value in self.choices:
                return True
        except TypeError:  # an unhashable value against a dict's keys
            return False
        return bool(self.also and self.also[0](value))

    def message(self, value, name: str, where: str = "") -> str:
        shown = f"'{value}'" if isinstance(value, str) else repr(value)
        return f"{where + ': ' if where else ''}{name} {shown} unknown; use {self._use}"


class Satisfies(Constraint):
    """Whatever ``test`` accepts, described as ``description``."""

    def __init__(self, test: Callable[[object], bool], description: str):
        self.test, self.description = test, description

    def accepts(self, value) -> bool:
        return bool(self.test(value))


class OrNone(Constraint):
    """None, or what ``inner`` accepts (reported as ``inner`` reports it)."""

    def __init__(self, inner: Constraint):
        self.inner = inner
        self.description = f"{inner.description} or None"

    def accepts(self, value) -> bool:
        return value is None or self.inner.accepts(value)

    def coerce(self, value):
        return value if value is None else self.inner.coerce(value)

    def message(self, value, name: str, where: str = "") -> str:
        return self.inner.message(value, name, where)


class AllOf(Constraint):
    """Every one of ``constraints``, checked in order: the first that fails gives the message."""

    def __init__(self, *constraints: Constraint):
        self.constraints = constraints
        self.description = " and ".join(c.description for c in constraints)

    def accepts(self, value) -> bool:
        return all(c.accepts(value) for c in self.constraints)

    def message(self, value, name: str, where: str = "") -> str:
        return next(c for c in self.constraints if not c.accepts(value)).message(value, name, where)


def check_fields(obj, where: str) -> None:
    """Check every field of ``obj`` that its class constrains (``_constraints``); the first
    value refused raises ``UserError`` naming ``where``, the field and the value."""
    for name, constraint in type(obj)._constraints.items():
        if constraint is not None:
            constraint.check(getattr(obj, name), name, where)


# ---------------------------------------------------------------- shared constraints
POSITIVE = Interval(float, 0, None, closed="neither")              # "a positive number" (finite)
NONNEG = Interval(float, 0, None, closed="left")                   # "a finite number >= 0"
FINITE_POSITIVE = Interval(float, 0, None, closed="neither", description="a finite positive number")
POSITIVE_WHOLE = Whole(1, description="a positive whole number")
# Every privacy budget (DistillConfig.epsilon, the dpsgd and frepo defenses' eps, the canary's
# --epsilon) is checked by this one constraint.
EPSILON = Interval(float, 0, None, closed="neither", description="a finite positive number")
