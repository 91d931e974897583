"""Keeping credentials out of task records.

A request's credentials (its `Authorization` header, cookies, an endpoint's token...) must not
outlive the request in the records, the reply and status streams or the records API. Names are
compared case-insensitively with `_` read as `-`, so the header `X-Api-Key` also covers a kwarg
`x_api_key`. Values under such a name, at any depth of a JSON-like value, become `REDACTED`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
#: nesting checked for names; anything deeper is redacted whole rather than recorded unchecked
MAX_DEPTH = 64


def normalized(name: str) -> str:
    return name.lower().replace("_", "-")


def name_set(configured: Iterable[str]) -> frozenset[str]:
    return frozenset(normalized(n) for n in configured)


def redact(value: Any, names: frozenset[str], depth: int = 0) -> Any:
    """`value` with every mapping entry under one of `names` replaced by `REDACTED`, at any
    depth (a container nested deeper than `MAX_DEPTH` is replaced whole). Copies only what
    changed: when nothing matched, `value` itself comes back, so callers tell "nothing to
    hide" by identity and pay no copy."""
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            if isinstance(key, str) and normalized(key) in names:
                new = REDACTED
            else:
                new = redact(item, names, depth + 1)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, list):
        items = [redact(item, names, depth + 1) for item in value]
        if any(new is not old for new, old in zip(items, value, strict=True)):
            return items
        return value
    return value


def redacted_headers(headers: Iterable[tuple[str, str]], names: frozenset[str]) -> dict[str, str]:
    """HTTP headers as a dict, with the values of credential-bearing ones redacted."""
    return {k: REDACTED if normalized(k) in names else v for k, v in headers}
