"""Whether a value from a caller can travel intact: through the queue (msgpack), the task
records (JSON columns, any SQL database) and back out as a JSON answer.

Python's JSON parser accepts what these cannot carry (integers past 64 bits, lone surrogates,
NaN and Infinity, nesting as deep as the recursion limit); such a value would fail far from
its cause (an enqueue, a records batch, a cron tick) as a server error. `problem` names one
such part with its path, so the caller is told what to change where the value enters.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo

#: deepest nesting accepted (an object or a list holding scalars is 1 level deep): far past
#: any real payload, and far enough below Python's recursion limit that every process encodes
#: and decodes them wherever its stack stands, a reply's and a record's wrappers included
MAX_DEPTH = 256
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1  # msgpack's range: int64 below zero, uint64 above


def _string_problem(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _label(key: Any) -> str:
    text = str(key)
    return text if len(text) <= 40 else text[:40] + "..."


def _short(path: str) -> str:
    return path if len(path) <= 120 else f"{path[:60]}...{path[-50:]}"


def _scalar_problem(value: Any, where: str) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            return f"integers must fit in 64 bits ({where})"
    elif isinstance(value, float):
        if not math.isfinite(value):
            return f"numbers must be finite, not {value} ({where})"
    elif isinstance(value, str) and _string_problem(value):
        return f"strings must be valid UTF-8 (lone surrogate at {where})"
    return None


#: a msgpack float64 with every exponent bit set: NaN or an infinity
_NON_FINITE = re.compile(rb"\xcb[\x7f\xff][\xf0-\xff]")


def worth_checking(encoded: bytes) -> bool:
    """Whether the msgpack encoding of a value that encoded fine may hide what `problem`
    refuses: nesting past MAX_DEPTH takes more bytes than that, and a non-finite float shows.
    (A match is only a reason to walk the value: the bytes may sit inside a string.)"""
    return len(encoded) > MAX_DEPTH or _NON_FINITE.search(encoded) is not None


def problem(value: Any, where: str = "value") -> str | None:
    """Why `value` cannot travel intact, naming the part (`where.key[3]`); None if it can.

    Walks without recursion, so a value nested past the limit is reported, not a crash."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                return f"{where} nest deeper than {MAX_DEPTH} levels (at {_short(path)})"
            for key, child in item.items():
                if isinstance(key, str) and _string_problem(key):
                    return f"strings must be valid UTF-8 (lone surrogate in a key of {path})"
                stack.append((child, f"{path}.{_label(key)}", depth + 1))
        elif isinstance(item, list | tuple):
            if depth >= MAX_DEPTH:
                return f"{where} nest deeper than {MAX_DEPTH} levels (at {_short(path)})"
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
        else:
            found = _scalar_problem(item, path)
            if found:
                return found
    return None


def _checked(value: Any, info: ValidationInfo) -> Any:
    found = problem(value, info.field_name or "value")
    if found:
        raise ValueError(found)
    return value


#: a JSON object field of a request body that is stored or queued as it came
PortableObject = Annotated[dict[str, Any], AfterValidator(_checked)]
