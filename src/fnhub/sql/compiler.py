"""Turn a parsed query into nested Python closures, once, so evaluation is just calls.

Every expression becomes ``fn(message, ctx) -> value``.  The compiler folds constant
sub-expressions, specialises the common shapes (a field compared with a literal, ``IN`` over
literals, ``LIKE`` with a literal pattern) and records whether an expression can only yield
True/False/None, so logic operators skip the truth conversion when they can.  Evaluation never
raises: every operator goes through the null-safe helpers in ``values``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from fnhub.sql import nodes as n
from fnhub.sql import values as v
from fnhub.sql.context import SqlContext
from fnhub.sql.errors import SqlSyntaxError
from fnhub.sql.functions import FUNCTIONS
from fnhub.sql.like import compile_like
from fnhub.sql.parser import parse

Message = dict[str, Any]
Evaluator = Callable[[Message, SqlContext], Any]

_NUM = v.NUMBER_TYPES
_EMPTY: Message = {}
_DEFAULT_CONTEXT = SqlContext()
_loads = orjson.loads
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": v.add,
    "-": v.sub,
    "*": v.mul,
    "/": v.div,
    "%": v.mod,
}
_ORDERED = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_EQUALITY = {"=": operator.eq, "<>": operator.ne}
_FLIPPED = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True, slots=True)
class _Expr:
    """A compiled expression and what the compiler knows about it."""

    fn: Evaluator
    is_bool: bool = False  # yields only True, False or None
    constant: bool = False  # same value for every message and context
    value: Any = None  # the value, when constant


def _const(value: Any) -> _Expr:
    return _Expr(lambda m, c: value, type(value) is bool or value is None, True, value)


def _folded(expr: _Expr) -> _Expr:
    """Evaluate a constant expression now; it cannot raise, like any evaluation."""
    if not expr.constant:
        return expr
    value = expr.fn(_EMPTY, _DEFAULT_CONTEXT)
    return _Expr(lambda m, c: value, expr.is_bool, True, value)


def _as_truth(expr: _Expr) -> Evaluator:
    """An evaluator yielding the SQL truth (True/False/None) of ``expr``."""
    if expr.is_bool:
        return expr.fn
    fn, truth = expr.fn, v.truth
    return lambda m, c: truth(fn(m, c))


class Query:
    """A compiled ``SELECT``: call ``evaluate`` once per message.

    ``bool_as_int`` reproduces Baetyl, where booleans selected explicitly come out as 1/0
    (while ``*`` passes them through unchanged).
    """

    __slots__ = ("_convert_bools", "_projections", "_star", "_where", "source")

    def __init__(
        self,
        source: str,
        star: bool,
        projections: list[tuple[str, Evaluator]],
        where: Evaluator | None,
        bool_as_int: bool,
    ) -> None:
        self.source = source
        self._star = star
        self._projections = tuple(projections)
        self._where = where
        self._convert_bools = bool_as_int

    def __repr__(self) -> str:
        return f"Query({self.source!r})"

    def evaluate(self, payload: bytes, ctx: SqlContext | None = None) -> dict[str, Any] | None:
        """Run the query on a raw payload; None means filtered out (publish nothing).

        Empty payloads count as ``{}``; anything that is not a JSON object (other JSON
        values, invalid JSON, invalid UTF-8) counts as a message with no fields.
        """
        if payload:
            try:
                message = _loads(payload)
            except (ValueError, TypeError):
                message = _EMPTY
            else:
                if type(message) is not dict:
                    message = _EMPTY
        else:
            message = _EMPTY
        return self._run(message, ctx or _DEFAULT_CONTEXT, message is not _EMPTY)

    def evaluate_parsed(self, message: Any, ctx: SqlContext | None = None) -> dict[str, Any] | None:
        """Run the query on an already decoded JSON value, which is left unmodified."""
        if type(message) is not dict:
            message = _EMPTY
        return self._run(message, ctx or _DEFAULT_CONTEXT, False)

    def _run(self, message: Message, ctx: SqlContext, owned: bool) -> dict[str, Any] | None:
        where = self._where
        if where is not None and where(message, ctx) is not True:
            return None
        if not self._star:
            if self._convert_bools:
                out = {}
                for name, fn in self._projections:
                    value = fn(message, ctx)
                    if value is True or value is False:
                        value = int(value)
                    out[name] = value
                return out
            return {name: fn(message, ctx) for name, fn in self._projections}
        if not self._projections:
            return message if owned else dict(message)
        # compute every projection before writing, since they read the input message
        values = [fn(message, ctx) for _, fn in self._projections]
        out = message if owned else dict(message)
        convert = self._convert_bools
        for (name, _), value in zip(self._projections, values, strict=True):
            if convert and (value is True or value is False):
                value = int(value)
            out[name] = value
        return out


def compile_sql(source: str, *, bool_as_int: bool = True) -> Query:
    """Parse and compile ``source``; raise SqlSyntaxError with a position if it is invalid."""
    if not isinstance(source, str):
        raise SqlSyntaxError(f"query must be a string, not {type(source).__name__}", 0)
    select = parse(source)
    compiler = _Compiler(source)
    projections = [(p.name, compiler.expr(p.expr).fn) for p in select.projections]
    where = None
    if select.where is not None:
        condition = compiler.expr(select.where)
        if not (condition.constant and v.truth(condition.value) is True):  # else: WHERE TRUE
            where = _as_truth(condition)
    return Query(source, select.star, projections, where, bool_as_int)


class _Compiler:
    """Recursive translation of nodes to closures; the tree depth is bounded by the parser."""

    def __init__(self, source: str) -> None:
        self.source = source

    def expr(self, node: n.Node) -> _Expr:
        method = getattr(self, "_" + type(node).__name__.lower())
        return _folded(method(node))

    def _literal(self, node: n.Literal) -> _Expr:
        return _const(node.value)

    def _field(self, node: n.Field) -> _Expr:
        path = node.path
        if len(path) == 1:
            key = path[0]
            return _Expr(lambda m, c: m.get(key))
        if len(path) == 2:
            outer, inner = path

            def nested(m: Message, c: SqlContext) -> Any:
                value = m.get(outer)
                return value.get(inner) if type(value) is dict else None

            return _Expr(nested)

        def deep(m: Message, c: SqlContext) -> Any:
            value: Any = m
            for key in path:
                if type(value) is not dict:
                    return None
                value = value.get(key)
            return value

        return _Expr(deep)

    def _unary(self, node: n.Unary) -> _Expr:
        operand = self.expr(node.operand)
        if node.op == "NOT":
            fn = _as_truth(operand)
            return _Expr(lambda m, c: _not(fn(m, c)), True, operand.constant)
        fn, op = operand.fn, v.negate if node.op == "-" else v.plus
        return _Expr(lambda m, c: op(fn(m, c)), False, operand.constant)

    def _binary(self, node: n.Binary) -> _Expr:
        left, right = self.expr(node.left), self.expr(node.right)
        constant = left.constant and right.constant
        if node.op == "AND":
            return _Expr(_and(_as_truth(left), _as_truth(right)), True, constant)
        if node.op == "OR":
            return _Expr(_or(_as_truth(left), _as_truth(right)), True, constant)
        if node.op in _ARITHMETIC:
            op, lf, rf = _ARITHMETIC[node.op], left.fn, right.fn
            return _Expr(lambda m, c: op(lf(m, c), rf(m, c)), False, constant)
        return _Expr(_comparison(node.op, left, right), True, constant)

    def _in(self, node: n.In) -> _Expr:
        operand = self.expr(node.operand)
        items = [self.expr(item) for item in node.items]
        constant = operand.constant and all(item.constant for item in items)
        if all(item.constant for item in items):
            fn = _in_constants(operand.fn, [item.value for item in items])
        else:
            fn = _in_general(operand.fn, [item.fn for item in items])
        if node.negated:
            fn = _negated(fn)
        return _Expr(fn, True, constant)

    def _like(self, node: n.Like) -> _Expr:
        operand, pattern = self.expr(node.operand), self.expr(node.pattern)
        escape, of = node.escape, operand.fn
        if pattern.constant:
            if type(pattern.value) is not str:
                fn: Evaluator = lambda m, c: None  # noqa: E731
            else:
                matches = compile_like(pattern.value, escape)

                def fn(m: Message, c: SqlContext) -> bool | None:
                    value = of(m, c)
                    return matches(value) if type(value) is str else None
        else:
            pf = pattern.fn

            def fn(m: Message, c: SqlContext) -> bool | None:
                value, text = of(m, c), pf(m, c)
                if type(value) is str and type(text) is str:
                    return compile_like(text, escape)(value)
                return None

        if node.negated:
            fn = _negated(fn)
        return _Expr(fn, True, operand.constant and pattern.constant)

    def _between(self, node: n.Between) -> _Expr:
        operand, low, high = (self.expr(x) for x in (node.operand, node.low, node.high))
        of, lf, hf, ordered = operand.fn, low.fn, high.fn, v.compare_ordered
        ge, le = operator.ge, operator.le

        def between(m: Message, c: SqlContext) -> bool | None:
            value = of(m, c)
            above = ordered(ge, value, lf(m, c))
            if above is False:
                return False
            below = ordered(le, value, hf(m, c))
            if below is False:
                return False
            return None if above is None or below is None else True

        fn = _negated(between) if node.negated else between
        return _Expr(fn, True, operand.constant and low.constant and high.constant)

    def _isnull(self, node: n.IsNull) -> _Expr:
        operand = self.expr(node.operand)
        fn = operand.fn
        if node.negated:
            return _Expr(lambda m, c: fn(m, c) is not None, True, operand.constant)
        return _Expr(lambda m, c: fn(m, c) is None, True, operand.constant)

    def _call(self, node: n.Call) -> _Expr:
        function = FUNCTIONS.get(node.name)
        if function is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise SqlSyntaxError(
                f"unknown function {node.name}() (known: {known})", node.pos, self.source
            )
        count = len(node.args)
        too_many = function.max_args is not None and count > function.max_args
        if count < function.min_args or too_many:
            raise SqlSyntaxError(
                f"{node.name}() takes {function.arity()}, got {count}", node.pos, self.source
            )
        impl = function.impl
        if function.uses_context:
            return _Expr(lambda m, c: impl(c))
        args = [self.expr(arg) for arg in node.args]
        constant = all(arg.constant for arg in args) and not function.volatile
        if count == 1:
            a = args[0].fn
            return _Expr(lambda m, c: impl(a(m, c)), False, constant)
        if count == 2:
            a, b = args[0].fn, args[1].fn
            return _Expr(lambda m, c: impl(a(m, c), b(m, c)), False, constant)
        fns = [arg.fn for arg in args]
        return _Expr(lambda m, c: impl(*[f(m, c) for f in fns]), False, constant)


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def _negated(fn: Evaluator) -> Evaluator:
    return lambda m, c: _not(fn(m, c))


def _and(lf: Evaluator, rf: Evaluator) -> Evaluator:
    def both(m: Message, c: SqlContext) -> bool | None:
        a = lf(m, c)
        if a is False:
            return False
        b = rf(m, c)
        if b is False:
            return False
        return None if a is None or b is None else True

    return both


def _or(lf: Evaluator, rf: Evaluator) -> Evaluator:
    def either(m: Message, c: SqlContext) -> bool | None:
        a = lf(m, c)
        if a is True:
            return True
        b = rf(m, c)
        if b is True:
            return True
        return None if a is None or b is None else False

    return either


def _comparison(op_name: str, left: _Expr, right: _Expr) -> Evaluator:
    """A comparison closure, specialised when one side is a literal."""
    if left.constant and not right.constant:
        left, right, op_name = right, left, _FLIPPED[op_name]
    ordered = op_name in _ORDERED
    op = _ORDERED[op_name] if ordered else _EQUALITY[op_name]
    lf = left.fn
    if right.constant:
        k = right.value
        if type(k) in _NUM:

            def with_number(m: Message, c: SqlContext) -> bool | None:
                a = lf(m, c)
                return op(a, k) if type(a) in _NUM else None

            return with_number
        if type(k) is str:

            def with_string(m: Message, c: SqlContext) -> bool | None:
                a = lf(m, c)
                return op(a, k) if type(a) is str else None

            return with_string
        if type(k) is bool and not ordered:

            def with_bool(m: Message, c: SqlContext) -> bool | None:
                a = lf(m, c)
                return op(a, k) if type(a) is bool else None

            return with_bool
        if k is None or type(k) is bool:
            return lambda m, c: None
    rf, compare = right.fn, v.compare_ordered if ordered else v.compare_equal
    return lambda m, c: compare(op, lf(m, c), rf(m, c))


def _in_constants(of: Evaluator, items: list[Any]) -> Evaluator:
    """``IN`` over literals: one set lookup per JSON type, with SQL's null result on misses."""
    groups: dict[type, set[Any]] = {int: set(), str: set(), bool: set()}
    for item in items:
        kind = int if type(item) in _NUM else type(item)
        if kind in groups:
            groups[kind].add(item)
    numbers, strings, bools = (frozenset(groups[k]) for k in (int, str, bool))
    # a miss is false only if every item had the value's type; otherwise some comparison was null
    num_miss = None if any(type(i) not in _NUM for i in items) else False
    str_miss = None if any(type(i) is not str for i in items) else False
    bool_miss = None if any(type(i) is not bool for i in items) else False

    def contains(m: Message, c: SqlContext) -> bool | None:
        value = of(m, c)
        kind = type(value)
        if kind is str:
            return True if value in strings else str_miss
        if kind in _NUM:
            return True if value in numbers else num_miss
        if kind is bool:
            return True if value in bools else bool_miss
        return None

    return contains


def _in_general(of: Evaluator, item_fns: list[Evaluator]) -> Evaluator:
    """``IN`` with computed items: true on any match, else null if any comparison was null."""
    equal, eq = v.compare_equal, operator.eq

    def contains(m: Message, c: SqlContext) -> bool | None:
        value = of(m, c)
        if value is None:
            return None
        unknown = False
        for fn in item_fns:
            result = equal(eq, value, fn(m, c))
            if result:
                return True
            if result is None:
                unknown = True
        return None if unknown else False

    return contains
