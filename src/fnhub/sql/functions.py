"""Built-in SQL functions: a registry the compiler checks names and arity against.

Each implementation takes already-evaluated arguments (or the SqlContext, for functions about
the delivery) and returns a JSON value; a null or wrongly typed argument gives null, so no
function raises.  Names are case-insensitive: the parser lower-cases them.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, DecimalException
from typing import Any

import orjson

from fnhub.sql.context import SqlContext
from fnhub.sql.values import NUMBER_TYPES, number
from fnhub.sql.values import mod as _mod


@dataclass(frozen=True, slots=True)
class Function:
    """A built-in: ``impl`` gets the context when ``uses_context``, else the argument values.

    ``volatile`` functions give a different answer per call and are never constant-folded.
    """

    name: str
    impl: Callable[..., Any]
    min_args: int
    max_args: int | None
    uses_context: bool = False
    volatile: bool = False

    def arity(self) -> str:
        """Human-readable accepted argument count, for error messages."""
        if self.max_args == self.min_args:
            plural = "" if self.min_args == 1 else "s"
            return f"{self.min_args} argument{plural}"
        if self.max_args is None:
            return f"at least {self.min_args} argument{'' if self.min_args == 1 else 's'}"
        return f"{self.min_args} to {self.max_args} arguments"


_isfinite = math.isfinite


def _now_ms(ctx: SqlContext) -> int:
    return ctx.timestamp_ms if ctx.timestamp_ms is not None else time.time_ns() // 1_000_000


def _uuid(ctx: SqlContext) -> str:
    return str(uuid.uuid4())


def _ceil(x: Any) -> Any:
    if type(x) is int:
        return x
    return number(math.ceil(x)) if type(x) is float and _isfinite(x) else None


def _floor(x: Any) -> Any:
    if type(x) is int:
        return x
    return number(math.floor(x)) if type(x) is float and _isfinite(x) else None


def _abs(x: Any) -> Any:
    return number(abs(x)) if type(x) in NUMBER_TYPES else None


_DECIMAL = Context(prec=60)


def _round(x: Any, digits: Any = 0) -> Any:
    """Round half away from zero (like SQL and Go's math.Round, unlike Python's round)."""
    if type(x) not in NUMBER_TYPES or type(digits) is not int:
        return None
    if type(x) is int and digits >= 0:
        return x
    digits = max(-40, min(40, digits))
    try:
        exact = Decimal(repr(x)) if type(x) is float else Decimal(x)
        rounded = exact.quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP, _DECIMAL)
    except DecimalException:
        return x if type(x) is float else None  # more digits than a float holds: already exact
    if digits <= 0:
        return number(int(rounded))
    return number(float(rounded))


def _lower(s: Any) -> Any:
    return s.lower() if type(s) is str else None


def _upper(s: Any) -> Any:
    return s.upper() if type(s) is str else None


def _text(value: Any) -> str | None:
    """String form for concat: strings as is, numbers and booleans as JSON writes them."""
    if type(value) is str:
        return value
    if type(value) in NUMBER_TYPES or type(value) is bool:
        return orjson.dumps(value).decode()
    return None


def _concat(*values: Any) -> Any:
    parts = []
    for value in values:
        text = _text(value)
        if text is None:
            return None
        parts.append(text)
    return "".join(parts)


def _length(value: Any) -> Any:
    """Characters of a string, or elements of an array."""
    return len(value) if type(value) in (str, list) else None


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("qos", lambda ctx: ctx.qos, 0, 0, uses_context=True),
        Function("topic", lambda ctx: ctx.topic, 0, 0, uses_context=True),
        Function("clientid", lambda ctx: ctx.client_id, 0, 0, uses_context=True),
        Function("current_timestamp", _now_ms, 0, 0, uses_context=True, volatile=True),
        Function("localtimestamp", _now_ms, 0, 0, uses_context=True, volatile=True),
        Function("uuid", _uuid, 0, 0, uses_context=True, volatile=True),
        Function("newid", _uuid, 0, 0, uses_context=True, volatile=True),
        Function("ceil", _ceil, 1, 1),
        Function("floor", _floor, 1, 1),
        Function("abs", _abs, 1, 1),
        Function("mod", _mod, 2, 2),
        Function("round", _round, 1, 2),
        Function("lower", _lower, 1, 1),
        Function("upper", _upper, 1, 1),
        Function("concat", _concat, 1, None),
        Function("length", _length, 1, 1),
        Function("coalesce", _coalesce, 1, None),
    )
}
