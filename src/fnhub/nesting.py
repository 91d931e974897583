"""How deep lists and dicts nest, measured without recursion: the values this guards against
are too deep for Python's (or msgspec's, or orjson's) recursion."""

from __future__ import annotations

from typing import Any


def nests_deeper(value: Any, depth: int) -> bool:
    """Whether lists, tuples and dicts in `value` nest more than `depth` levels (`value`
    itself, when a container, is the first level)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if level > depth:
            return True
        stack.extend((child, level + 1) for child in children)
    return False
