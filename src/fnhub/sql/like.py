"""``LIKE`` matching in linear-ish time, without building backtracking regular expressions.

A pattern is split on ``%`` into segments; ``_`` matches any one character.  The first segment
must match at the start, the last at the end, and each middle one is found leftmost after the
previous, which is enough for ``%``-only wildcards and costs O(len(text) * len(pattern)) at
worst, so a rule can't be made to hang on a long string.  Common shapes (``'abc%'``,
``'%abc'``, ``'%abc%'``, no wildcard) become a single ``str`` method call.  Matching is
case-sensitive; with ``ESCAPE 'c'``, ``c%``, ``c_`` and ``cc`` stand for the literal character.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

Matcher = Callable[[str], bool]
_ANY = object()  # marks "_" inside a segment


def _segments(pattern: str, escape: str | None) -> list[list[object]]:
    """Split on unescaped ``%``; each segment is a list of literal chars and ``_ANY``."""
    segments: list[list[object]] = [[]]
    chars = iter(pattern)
    for char in chars:
        if escape is not None and char == escape:
            segments[-1].append(next(chars, escape))  # a trailing escape char is literal
        elif char == "%":
            segments.append([])
        elif char == "_":
            segments[-1].append(_ANY)
        else:
            segments[-1].append(char)
    return segments


class _Segment:
    """One ``%``-free piece: a plain string, or a fixed-length regex when it holds ``_``."""

    __slots__ = ("regex", "size", "text")

    def __init__(self, items: list[object]) -> None:
        self.size = len(items)
        if _ANY in items:
            source = "".join("." if item is _ANY else re.escape(str(item)) for item in items)
            self.regex: re.Pattern[str] | None = re.compile(source, re.DOTALL)
            self.text = ""
        else:
            self.regex = None
            self.text = "".join(str(item) for item in items)

    def match_at(self, value: str, pos: int) -> bool:
        if self.regex is None:
            return value.startswith(self.text, pos)
        return self.regex.match(value, pos) is not None

    def find(self, value: str, pos: int, end: int) -> int:
        """Leftmost start of this segment within ``value[pos:end]``, or -1."""
        if self.regex is None:
            return value.find(self.text, pos, end)
        found = self.regex.search(value, pos, end)
        return found.start() if found else -1


@lru_cache(maxsize=512)
def compile_like(pattern: str, escape: str | None = None) -> Matcher:
    """Return a predicate telling whether a string matches ``pattern``; cached for reuse."""
    raw = _segments(pattern, escape)
    plain = all(_ANY not in seg for seg in raw)
    if plain:
        texts = ["".join(str(c) for c in seg) for seg in raw]
        if len(texts) == 1:
            whole = texts[0]
            return lambda value: value == whole
        if len(texts) == 2 and not texts[1]:
            prefix = texts[0]
            return lambda value: value.startswith(prefix)
        if len(texts) == 2 and not texts[0]:
            suffix = texts[1]
            return lambda value: value.endswith(suffix)
        if len(texts) == 3 and not texts[0] and not texts[2]:
            middle = texts[1]
            return lambda value: middle in value
    segments = [_Segment(seg) for seg in raw]
    if len(segments) == 1:
        only = segments[0]
        return lambda value: len(value) == only.size and only.match_at(value, 0)
    return lambda value: _match(segments, value)


def _match(segments: list[_Segment], value: str) -> bool:
    first, middle, last = segments[0], segments[1:-1], segments[-1]
    end = len(value) - last.size
    if end < first.size or not first.match_at(value, 0) or not last.match_at(value, end):
        return False
    pos = first.size
    for segment in middle:
        found = segment.find(value, pos, end)
        if found < 0:
            return False
        pos = found + segment.size
    return True
