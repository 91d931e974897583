"""Recursive-descent parser for ``SELECT <projections> [FROM x] [WHERE <condition>]``.

Why hand-written rather than sqlglot: the language is tiny, Baetyl has quirks no general SQL
dialect shares (no FROM, ``CURRENT_TIMESTAMP`` with or without parentheses, ``qos()``/``topic()``
as functions, backticks inside dotted paths), and rule authors need an exact column for every
mistake.  sqlglot accepts many constructs we would then have to reject one by one, and its error
positions point at tokens after recovery rather than at the first wrong character.

Precedence, loosest first: ``OR``, ``AND``, ``NOT``, predicates (comparisons, ``IN``, ``LIKE``,
``BETWEEN``, ``IS NULL``; not chainable), ``+ -``, ``* / %``, unary ``- +``, primaries.
Nesting is bounded so hostile input yields a SqlSyntaxError, never a RecursionError.
"""

from __future__ import annotations

from fnhub.sql import nodes as n
from fnhub.sql.errors import SqlSyntaxError
from fnhub.sql.lexer import Kind, Token, tokenize

#: keywords that can never be bare field names (quote them with backticks instead)
RESERVED = frozenset(
    {
        *("SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "IN", "LIKE", "IS", "BETWEEN"),
        *("NULL", "TRUE", "FALSE", "CURRENT_TIMESTAMP", "LOCALTIMESTAMP"),
    }
)
#: functions that may be written without parentheses, as in standard SQL
NILADIC = frozenset({"CURRENT_TIMESTAMP", "LOCALTIMESTAMP"})
_COMPARISONS = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
#: how deeply parentheses, unary operators and calls may nest while parsing
MAX_NESTING = 40
#: how deep the finished tree may be (long ``a + b + c ...`` chains grow it without nesting)
MAX_DEPTH = 100


def parse(source: str) -> n.Select:
    """Parse a whole query; raise SqlSyntaxError pointing at the first problem."""
    if not source.strip():
        raise SqlSyntaxError("empty query: expected SELECT", 0, source)
    select = _Parser(source).query()
    _check_depth(select, source)
    return select


class _Parser:
    """Parser state: the token list, a cursor and the current nesting level."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0
        self.nesting = 0

    # -- token helpers ---------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.index]

    @property
    def prev_end(self) -> int:
        return self.tokens[self.index - 1].end if self.index else 0

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not Kind.EOF:
            self.index += 1
        return token

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind is Kind.OP and self.tok.value in ops

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind is Kind.IDENT and self.tok.upper in words

    def error(self, message: str, token: Token | None = None) -> SqlSyntaxError:
        token = token or self.tok
        return SqlSyntaxError(message, token.pos, self.source)

    def expected(self, what: str) -> SqlSyntaxError:
        return self.error(f"expected {what}, found {describe(self.tok)}")

    def expect_op(self, op: str, what: str | None = None) -> Token:
        if not self.is_op(op):
            raise self.expected(what or f"'{op}'")
        return self.advance()

    def enter(self, token: Token) -> None:
        """Count one nesting level opened by ``token``, which an error points at."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            message = f"expression nested too deeply (more than {MAX_NESTING} levels)"
            raise self.error(message, token)

    # -- grammar ---------------------------------------------------------------------------

    def query(self) -> n.Select:
        if not self.is_kw("SELECT"):
            raise self.expected("SELECT")
        self.advance()
        star = False
        projections: list[n.Projection] = []
        while True:
            if self.is_op("*"):
                self.advance()
                star = True
            else:
                projections.append(self.projection())
            if not self.is_op(","):
                break
            self.advance()
        if self.is_kw("FROM"):
            self.advance()
            if self.tok.kind not in (Kind.IDENT, Kind.QUOTED, Kind.STRING):
                raise self.expected("a source name after FROM")
            self.advance()
        where = None
        if self.is_kw("WHERE"):
            self.advance()
            where = self.expression("a condition after WHERE")
        if self.is_op(";"):
            self.advance()
        if self.tok.kind is not Kind.EOF:
            allowed = "',', FROM, WHERE or end of query" if where is None else "end of query"
            raise self.expected(allowed)
        return n.Select(star, tuple(projections), where)

    def projection(self) -> n.Projection:
        start = self.tok.pos
        expr = self.expression("a projection (an expression or *)")
        if self.is_kw("AS"):
            self.advance()
            if self.tok.kind not in (Kind.IDENT, Kind.QUOTED, Kind.STRING):
                raise self.expected("a name after AS")
            return n.Projection(expr, str(self.advance().value))
        if isinstance(expr, n.Field):
            return n.Projection(expr, ".".join(expr.path))
        return n.Projection(expr, self.source[start : self.prev_end])

    def expression(self, what: str = "an expression") -> n.Node:
        if self.tok.kind is Kind.EOF or self.is_kw("WHERE", "FROM", "AS") or self.is_op(",", ")"):
            raise self.expected(what)
        return self.disjunction()

    def disjunction(self) -> n.Node:
        left = self.conjunction()
        while self.is_kw("OR"):
            token = self.advance()
            left = n.Binary(token.pos, "OR", left, self.conjunction())
        return left

    def conjunction(self) -> n.Node:
        left = self.negation()
        while self.is_kw("AND"):
            token = self.advance()
            left = n.Binary(token.pos, "AND", left, self.negation())
        return left

    def negation(self) -> n.Node:
        if self.is_kw("NOT"):
            token = self.advance()
            self.enter(token)
            operand = self.negation()
            self.nesting -= 1
            return n.Unary(token.pos, "NOT", operand)
        return self.predicate()

    def predicate(self) -> n.Node:
        left = self.additive()
        token = self.tok
        if token.kind is Kind.OP and token.value in _COMPARISONS:
            self.advance()
            return n.Binary(token.pos, _COMPARISONS[str(token.value)], left, self.additive())
        if self.is_kw("IS"):
            self.advance()
            negated = self.is_kw("NOT")
            if negated:
                self.advance()
            if not self.is_kw("NULL"):
                raise self.expected("NULL after IS" + (" NOT" if negated else ""))
            self.advance()
            return n.IsNull(token.pos, left, negated)
        negated = self.is_kw("NOT")
        if negated:
            self.advance()
            if not self.is_kw("IN", "LIKE", "BETWEEN"):
                raise self.expected("IN, LIKE or BETWEEN after NOT")
        if self.is_kw("IN"):
            self.advance()
            self.expect_op("(", "'(' after IN")
            items = [self.expression("a value in the IN list")]
            while self.is_op(","):
                self.advance()
                items.append(self.expression("a value in the IN list"))
            self.expect_op(")", "',' or ')' in the IN list")
            return n.In(token.pos, left, tuple(items), negated)
        if self.is_kw("LIKE"):
            self.advance()
            pattern = self.additive()
            escape = None
            if self.is_kw("ESCAPE"):
                self.advance()
                if self.tok.kind is not Kind.STRING or len(str(self.tok.value)) != 1:
                    raise self.expected("a one-character string after ESCAPE")
                escape = str(self.advance().value)
            return n.Like(token.pos, left, pattern, escape, negated)
        if self.is_kw("BETWEEN"):
            self.advance()
            low = self.additive()
            if not self.is_kw("AND"):
                raise self.expected("AND in BETWEEN ... AND ...")
            self.advance()
            return n.Between(token.pos, left, low, self.additive(), negated)
        return left

    def additive(self) -> n.Node:
        left = self.multiplicative()
        while self.is_op("+", "-"):
            token = self.advance()
            left = n.Binary(token.pos, str(token.value), left, self.multiplicative())
        return left

    def multiplicative(self) -> n.Node:
        left = self.unary()
        while self.is_op("*", "/", "%"):
            token = self.advance()
            left = n.Binary(token.pos, str(token.value), left, self.unary())
        return left

    def unary(self) -> n.Node:
        if self.is_op("-", "+"):
            token = self.advance()
            self.enter(token)
            operand = self.unary()
            self.nesting -= 1
            if token.value == "-" and isinstance(operand, n.Literal):
                value = operand.value
                # fold so "-9223372036854775808" stays exact (bool is an int, not a number here)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    negative = -value
                    if negative < -(2**63):  # below int64: a float, as JSON numbers would be
                        negative = float(negative)
                    return n.Literal(token.pos, negative)
            return n.Unary(token.pos, str(token.value), operand)
        return self.primary()

    def primary(self) -> n.Node:
        token = self.tok
        if token.kind in (Kind.NUMBER, Kind.STRING):
            self.advance()
            return n.Literal(token.pos, token.value)
        if self.is_op("("):
            self.enter(self.advance())
            inner = self.expression()
            self.nesting -= 1
            self.expect_op(")", "')'")
            return inner
        if token.kind is Kind.QUOTED:
            return self.path()
        if token.kind is not Kind.IDENT:
            raise self.expected("an expression")
        word = token.upper
        if word in ("TRUE", "FALSE", "NULL"):
            self.advance()
            return n.Literal(token.pos, {"TRUE": True, "FALSE": False, "NULL": None}[word])
        if word in NILADIC:
            self.advance()
            if self.is_op("("):
                self.advance()
                self.expect_op(")", f"')' after {word}(")
            return n.Call(token.pos, word.lower(), ())
        if word in RESERVED:
            raise self.expected("an expression")
        if self.tokens[self.index + 1].kind is Kind.OP and self.tokens[self.index + 1].value == "(":
            return self.call()
        return self.path()

    def call(self) -> n.Node:
        name = self.advance()
        self.enter(self.advance())  # "("
        args: list[n.Node] = []
        if not self.is_op(")"):
            args.append(self.expression("a function argument"))
            while self.is_op(","):
                self.advance()
                args.append(self.expression("a function argument"))
        self.nesting -= 1
        self.expect_op(")", f"',' or ')' in the arguments of {name.value}()")
        return n.Call(name.pos, str(name.value).lower(), tuple(args))

    def path(self) -> n.Field:
        first = self.advance()
        keys = [str(first.value)]
        while self.is_op("."):
            self.advance()
            if self.tok.kind not in (Kind.IDENT, Kind.QUOTED):
                raise self.expected("a field name after '.'")
            keys.append(str(self.advance().value))
        return n.Field(first.pos, tuple(keys))


def describe(token: Token) -> str:
    """Name a token the way a person would in an error message."""
    if token.kind is Kind.EOF:
        return "end of query"
    if token.kind is Kind.IDENT:
        return f"keyword {token.upper}" if token.upper in RESERVED else f"'{token.value}'"
    if token.kind is Kind.QUOTED:
        return f"`{token.value}`"
    if token.kind is Kind.STRING:
        return f"string '{str(token.value)[:30]}'"
    if token.kind is Kind.NUMBER:
        return f"number {token.value}"
    return f"'{token.value}'"


def _children(node: n.Node) -> tuple[n.Node, ...]:
    if isinstance(node, n.Unary):
        return (node.operand,)
    if isinstance(node, n.Binary):
        return (node.left, node.right)
    if isinstance(node, n.In):
        return (node.operand, *node.items)
    if isinstance(node, n.Like):
        return (node.operand, node.pattern)
    if isinstance(node, n.Between):
        return (node.operand, node.low, node.high)
    if isinstance(node, n.IsNull):
        return (node.operand,)
    if isinstance(node, n.Call):
        return node.args
    return ()


def _check_depth(select: n.Select, source: str) -> None:
    """Reject trees too deep to compile and evaluate with ordinary recursion (iteratively)."""
    roots = [p.expr for p in select.projections]
    if select.where is not None:
        roots.append(select.where)
    stack = [(root, 1) for root in roots]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SqlSyntaxError(
                f"expression too complex (deeper than {MAX_DEPTH} operations)", node.pos, source
            )
        stack.extend((child, depth + 1) for child in _children(node))
