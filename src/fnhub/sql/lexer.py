"""Tokens of the SQL filter language, each with its exact offset for error messages.

Keywords are not distinguished here: an unquoted identifier is a keyword or a field name
depending on where the parser meets it, so the lexer stays a flat, context-free scanner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from fnhub.sql.errors import SqlSyntaxError


class Kind(Enum):
    """What a token is; keywords are IDENT tokens recognised by the parser."""

    IDENT = "identifier"
    QUOTED = "`quoted identifier`"
    NUMBER = "number"
    STRING = "string"
    OP = "operator"
    EOF = "end of query"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``value`` is the identifier/string text (unescaped), number or operator."""

    kind: Kind
    value: str | int | float
    pos: int
    end: int

    @property
    def upper(self) -> str:
        """The identifier in upper case, for case-insensitive keyword checks."""
        value = self.value
        return value.upper() if self.kind is Kind.IDENT and isinstance(value, str) else ""


_SPACE = re.compile(r"\s+")
_IDENT = re.compile(r"[^\W\d]\w*")
_NUMBER = re.compile(r"\d+(\.\d*)?([eE][+-]?\d+)?")
_OPERATORS = (
    "<>",
    "!=",
    "<=",
    ">=",
    "=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "(",
    ")",
    ",",
    ".",
    ";",
)
_I64_MIN, _U64_MAX = -(2**63), 2**64 - 1


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens, ending with one EOF token; raise on anything unknown."""
    tokens: list[Token] = []
    pos, size = 0, len(source)
    while True:
        space = _SPACE.match(source, pos)
        if space:
            pos = space.end()
        if pos >= size:
            tokens.append(Token(Kind.EOF, "", size, size))
            return tokens
        char = source[pos]
        if char == "'":
            text, end = _quoted(source, pos, "'", "string")
            tokens.append(Token(Kind.STRING, text, pos, end))
        elif char == "`":
            text, end = _quoted(source, pos, "`", "quoted identifier")
            if not text:
                raise SqlSyntaxError("empty `quoted identifier`", pos, source)
            tokens.append(Token(Kind.QUOTED, text, pos, end))
        elif char == '"':
            raise SqlSyntaxError(
                "double quotes are not supported: use 'single quotes' for strings "
                "or `backticks` for field names",
                pos,
                source,
            )
        elif char.isdigit() and (number := _NUMBER.match(source, pos)):
            end = number.end()
            tokens.append(Token(Kind.NUMBER, _number(number.group(), pos, source), pos, end))
        elif ident := _IDENT.match(source, pos):
            end = ident.end()
            tokens.append(Token(Kind.IDENT, ident.group(), pos, end))
        else:
            op = next((op for op in _OPERATORS if source.startswith(op, pos)), None)
            if op is None:
                raise SqlSyntaxError(f"unexpected character {char!r}", pos, source)
            end = pos + len(op)
            tokens.append(Token(Kind.OP, op, pos, end))
        pos = end


def _quoted(source: str, start: int, quote: str, what: str) -> tuple[str, int]:
    """Read a quoted run starting at ``start``; a doubled quote stands for one quote."""
    parts: list[str] = []
    pos = start + 1
    while True:
        close = source.find(quote, pos)
        if close < 0:
            raise SqlSyntaxError(f"unterminated {what} (missing closing {quote})", start, source)
        parts.append(source[pos:close])
        if source.startswith(quote, close + 1):
            parts.append(quote)
            pos = close + 2
        else:
            return "".join(parts), close + 1


def _number(text: str, pos: int, source: str) -> int | float:
    """Convert a numeric literal; integers beyond 64 bits become floats, like JSON numbers do."""
    try:
        if "." not in text and "e" not in text.lower():
            value: int | float = int(text)
            if _I64_MIN <= value <= _U64_MAX:
                return value
        value = float(text)
    except (ValueError, OverflowError):
        raise SqlSyntaxError(f"number {text[:20]!r} is out of range", pos, source) from None
    if value in (float("inf"), float("-inf")):
        raise SqlSyntaxError(f"number {text[:20]!r} is out of range", pos, source)
    return value
