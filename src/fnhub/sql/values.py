"""Null-safe value semantics shared by operators and functions.

The rules, in one place: JSON numbers (int and float, never bool) do arithmetic; anything null,
missing or of the wrong type makes the result null; comparisons need two numbers, two strings,
or (for ``=``/``<>`` only) two values of the same JSON type; results that leave the float range
or the 64-bit integer range JSON serialisers accept are normalised, so an evaluated row can
always be encoded.  None of these functions raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

NUMBER_TYPES = frozenset({int, float})
_I64_MIN, _U64_MAX = -(2**63), 2**64 - 1
_isfinite = math.isfinite


def number(value: int | float) -> int | float | None:
    """Normalise an arithmetic result: big ints become floats, inf/nan become null."""
    if type(value) is int:
        if _I64_MIN <= value <= _U64_MAX:
            return value
        try:
            value = float(value)
        except OverflowError:
            return None
    return value if _isfinite(value) else None


def truth(value: Any) -> bool | None:
    """SQL truth of a value: booleans as is, numbers by non-zero, everything else null."""
    if value is True or value is False:
        return value
    if type(value) in NUMBER_TYPES:
        nonzero: bool = value != 0
        return nonzero
    return None


def add(a: Any, b: Any) -> Any:
    if type(a) in NUMBER_TYPES and type(b) in NUMBER_TYPES:
        return number(a + b)
    return None


def sub(a: Any, b: Any) -> Any:
    if type(a) in NUMBER_TYPES and type(b) in NUMBER_TYPES:
        return number(a - b)
    return None


def mul(a: Any, b: Any) -> Any:
    if type(a) in NUMBER_TYPES and type(b) in NUMBER_TYPES:
        return number(a * b)
    return None


def div(a: Any, b: Any) -> Any:
    """True division; exact integer quotients stay integers (``4 / 2`` is ``2``, not ``2.0``)."""
    if type(a) in NUMBER_TYPES and type(b) in NUMBER_TYPES and b != 0:
        if type(a) is int and type(b) is int and a % b == 0:
            return number(a // b)
        return number(a / b)
    return None


def mod(a: Any, b: Any) -> Any:
    """Remainder with the sign of the dividend, as SQL ``MOD`` and Go's ``math.Mod`` do."""
    if type(a) in NUMBER_TYPES and type(b) in NUMBER_TYPES and b != 0:
        if type(a) is int and type(b) is int:
            rest = abs(a) % abs(b)
            return -rest if a < 0 else rest
        try:
            return number(math.fmod(a, b))
        except ValueError:  # fmod(inf, x) cannot happen for JSON input, but stay total
            return None
    return None


def negate(a: Any) -> Any:
    return number(-a) if type(a) in NUMBER_TYPES else None


def plus(a: Any) -> Any:
    return a if type(a) in NUMBER_TYPES else None


def compare_ordered(op: Callable[[Any, Any], bool], a: Any, b: Any) -> bool | None:
    """``< <= > >=``: numbers with numbers, strings with strings (by code point), else null."""
    ta = type(a)
    if ta in NUMBER_TYPES:
        return op(a, b) if type(b) in NUMBER_TYPES else None
    if ta is str and type(b) is str:
        return op(a, b)
    return None


def compare_equal(op: Callable[[Any, Any], bool], a: Any, b: Any) -> bool | None:
    """``=``/``<>``: numbers by value, otherwise only values of the same JSON type."""
    ta = type(a)
    if ta in NUMBER_TYPES:
        return op(a, b) if type(b) in NUMBER_TYPES else None
    if a is None or ta is not type(b):
        return None
    try:
        return op(a, b)
    except RecursionError:  # absurdly deep nested arrays/objects
        return None
