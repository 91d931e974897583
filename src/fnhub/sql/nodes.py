"""The syntax tree the parser builds and the compiler consumes exactly once.

Nodes are plain frozen dataclasses; every node keeps the offset of its first character so the
compiler can point at, say, an unknown function name.  ``text`` on projections is the source
slice used as the output name when there is no alias.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Node:
    """Base class: ``pos`` is the 0-based offset of the node in the query text."""

    pos: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A number, string, TRUE/FALSE or NULL written in the query."""

    value: object


@dataclass(frozen=True, slots=True)
class Field(Node):
    """A field of the message: ``path`` holds one key per dotted segment (unquoted)."""

    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    """``-x``, ``+x`` or ``NOT x``."""

    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """Arithmetic (``+ - * / %``), comparison (``= <> < <= > >=``) or logic (``AND OR``)."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class In(Node):
    """``x [NOT] IN (a, b, ...)``."""

    operand: Node
    items: tuple[Node, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class Like(Node):
    """``x [NOT] LIKE pattern [ESCAPE 'c']``."""

    operand: Node
    pattern: Node
    escape: str | None
    negated: bool


@dataclass(frozen=True, slots=True)
class Between(Node):
    """``x [NOT] BETWEEN low AND high`` (inclusive)."""

    operand: Node
    low: Node
    high: Node
    negated: bool


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    """``x IS [NOT] NULL``; never null itself."""

    operand: Node
    negated: bool


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A function call; ``name`` is lower-cased, arity is checked by the compiler."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Projection:
    """One SELECT item: an expression and the key it is written to in the output."""

    expr: Node
    name: str


@dataclass(frozen=True, slots=True)
class Select:
    """A whole query: ``star`` is true when ``*`` appears anywhere in the SELECT list."""

    star: bool
    projections: tuple[Projection, ...]
    where: Node | None
