"""Property tests: compiling only ever raises SqlSyntaxError, evaluating never raises.

Every output must also be encodable by orjson, since callers publish it as JSON.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fnhub.sql import SqlContext, SqlSyntaxError, compile_sql

CTX = SqlContext(qos=1, topic="a/b", client_id="c1")
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- payloads --------------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "s", "n", "nest", "a.b", "k-1", ""])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["abc", "a%b", "x_y", "10", ""])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=12,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=8)
PAYLOADS = OBJECTS.map(orjson.dumps) | JSON.map(orjson.dumps) | st.binary(max_size=64)

VALID_QUERIES = [
    "SELECT *",
    "SELECT *, qos() AS qos, topic() AS topic WHERE a > 30 AND s LIKE 'b%'",
    "SELECT a, b, nest.a, nest.`a.b`, `k-1` WHERE a IS NOT NULL OR b IS NULL",
    "SELECT a + b AS x, a - b, a * b, a / b, a % b, -a, mod(a, b), abs(a), ceil(a), floor(b)",
    "SELECT round(a), round(a, b), round(b, -3), lower(s), upper(s), length(s), length(a)",
    "SELECT concat(a, b, s), coalesce(a, b, s) AS c, uuid() AS u, CURRENT_TIMESTAMP AS t",
    "SELECT * WHERE a IN (1, 'x', NULL, TRUE) OR b NOT IN (a, s, nest) OR s LIKE a",
    "SELECT a = b AS eq, a <> b, a < b, a <= b, a > b, a >= b, NOT a, a AND b, a OR b",
    "SELECT * WHERE a BETWEEN b AND s OR s NOT LIKE '%a_b%' ESCAPE '\\'",
    "SELECT nest.nest.nest.a AS deep, clientid() AS c WHERE NOT (a = 1 AND b < 2.5)",
]
COMPILED = [compile_sql(sql) for sql in VALID_QUERIES]


def check_output(out: dict[str, Any] | None) -> None:
    assert out is None or isinstance(out, dict)
    if out is not None:
        orjson.dumps(out)  # raises if a value cannot be published


@FAST
@given(PAYLOADS)
def test_evaluate_never_raises_on_any_payload(payload: bytes) -> None:
    for query in COMPILED:
        check_output(query.evaluate(payload, CTX))


@FAST
@given(st.binary(max_size=256))
def test_evaluate_never_raises_on_arbitrary_bytes(payload: bytes) -> None:
    for query in COMPILED:
        check_output(query.evaluate(payload, CTX))


# -- compiling arbitrary text ----------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        *[
            "SELECT",
            "WHERE",
            "FROM",
            "AS",
            "AND",
            "OR",
            "NOT",
            "IN",
            "LIKE",
            "IS",
            "NULL",
            "TRUE",
            "FALSE",
            "BETWEEN",
            "ESCAPE",
        ],
        *[
            "*",
            ",",
            "(",
            ")",
            ".",
            "+",
            "-",
            "/",
            "%",
            "=",
            "<>",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            ";",
            "'",
            "`",
            '"',
            "?",
            "''",
        ],
        *["a", "b", "nest", "`c d`", "`a.b`", "'x'", "'%'", "1", "2.5", "0", "1e999", "9" * 30],
        *["qos()", "topic", "abs", "mod", "concat", "round", "coalesce", "CURRENT_TIMESTAMP"],
        *["uuid", "newid", "LOCALTIMESTAMP", "foo", "\n", "\t", "é", "'it''s'"],
    ]
)
SQLISH = st.lists(TOKENS, max_size=25)


def compile_or_syntax_error(text: str) -> None:
    try:
        query = compile_sql(text)
    except SqlSyntaxError as err:
        assert str(err)
        assert err.column >= 1 and err.line >= 1
        return
    check_output(query.evaluate(b'{"a": 1, "b": "x", "nest": {"a": 2}}', CTX))


@FAST
@given(st.text(max_size=80))
def test_compile_arbitrary_text(text: str) -> None:
    compile_or_syntax_error(text)
    compile_or_syntax_error("SELECT " + text)


@FAST
@given(SQLISH, st.sampled_from([" ", ""]))
def test_compile_sqlish_token_soup(tokens: list[str], separator: str) -> None:
    compile_or_syntax_error(separator.join(tokens))
    compile_or_syntax_error("SELECT " + separator.join(tokens))
    compile_or_syntax_error("SELECT a WHERE " + separator.join(tokens))


# -- well-formed generated expressions -------------------------------------------------------

FIELDS = st.sampled_from(["a", "b", "s", "n", "nest", "nest.a", "nest.`a.b`", "`k-1`", "zz"])
LITERALS = st.sampled_from(["1", "0", "-3", "2.5", "'abc'", "'a%'", "'_'", "TRUE", "FALSE", "NULL"])
UNARY_FUNCS = st.sampled_from(["abs", "ceil", "floor", "lower", "upper", "length", "round"])
BINARY_FUNCS = st.sampled_from(["mod", "round", "concat", "coalesce"])
BINARY_OPS = st.sampled_from(
    ["+", "-", "*", "/", "%", "=", "<>", "<", "<=", ">", ">=", "AND", "OR"]
)


def _compose(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, BINARY_OPS, inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        inner.map(lambda e: f"NOT ({e})"),
        inner.map(lambda e: f"-({e})"),
        st.tuples(UNARY_FUNCS, inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(BINARY_FUNCS, inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(inner, st.lists(inner, min_size=1, max_size=3)).map(
            lambda t: f"({t[0]}) IN ({', '.join(t[1])})"
        ),
        st.tuples(inner, inner).map(lambda t: f"({t[0]}) NOT LIKE ({t[1]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]}) BETWEEN ({t[1]}) AND ({t[2]})"),
        inner.map(lambda e: f"({e}) IS NOT NULL"),
    )


EXPRESSIONS = st.recursive(FIELDS | LITERALS, _compose, max_leaves=8)


@FAST
@given(EXPRESSIONS, EXPRESSIONS, OBJECTS)
def test_generated_queries_compile_and_evaluate(value: str, condition: str, message: dict) -> None:
    payload = orjson.dumps(message)
    projected = compile_sql(f"SELECT {value} AS v, qos() AS q")
    out = projected.evaluate(payload, CTX)
    check_output(out)
    assert out is not None and set(out) == {"v", "q"} and out["q"] == 1
    where = compile_sql(f"SELECT * WHERE {condition}").evaluate(payload, CTX)
    negated = compile_sql(f"SELECT * WHERE NOT ({condition})").evaluate(payload, CTX)
    assert where is None or where == message  # a filter passes the message through unchanged
    assert where is None or negated is None  # a condition and its negation never both pass
    value_of = compile_sql(f"SELECT ({condition}) AS t", bool_as_int=False)
    truth = value_of.evaluate(payload, CTX)["t"]  # type: ignore[index]
    if type(truth) in (int, float):
        truth = truth != 0
    assert (where is not None) == (truth is True)  # only a true condition passes
    assert (negated is not None) == (truth is False)
