"""SQL filter engine: the Baetyl examples (reference/baetyl.md 6.1/6.2), semantics and errors."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import pytest

from fnhub.sql import Query, SqlContext, SqlSyntaxError, compile_sql

CTX = SqlContext(qos=0, topic="t", client_id="c")


def run(sql: str, payload: Any, ctx: SqlContext = CTX, **options: Any) -> dict[str, Any] | None:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return compile_sql(sql, **options).evaluate(raw, ctx)


def strict(value: Any) -> Any:
    """Make equality type-exact (True != 1, 1 != 1.0) by tagging every scalar with its type."""
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strict(v) for v in value]
    return (type(value).__name__, value)


# -- Baetyl examples 6.1 / 6.2 ---------------------------------------------------------------

SELECT_MANY = (
    "select device as `key`, `key` AS `value`, `value` as data, boolValue where `value` >= 10"
)
SELECT_FUNCTIONS = (
    "select `value` + 1 as `value`, doubleValue * `value` as doubleValue, "
    "ceil(doubleValue) as ceilValue, floor(doubleValue) as floorValue, "
    "mod(doubleValue, `value`) as modValue where device = 'device_abc'"
)
NEST = "select nestMsg.device AS `key`, nestMsg.`value` AS `value` where nestMsg.`value` <> 5"
TSDB = "SELECT temperature, ts, unit WHERE temperature > 50"
TSDB_IN = {
    "temperature": 67.5,
    "ts": 1568817178,
    "deviceid": "dev001",
    "factory": "shanghai",
    "type": "temperature tensor",
    "unit": "℃",
}
MULTI = "select device, topic() as data, *"
MULTI_CTX = SqlContext(topic="multi/test")
WHERE_13 = (
    "select * where ce='eq' AND cne <> 'eq' AND "
    "((cv1 <= 10 OR cv2 > cv1 + 10) OR cv3 IN ('expectA','expectB'))"
)
WHERE_14 = "select * where cv3 like 'expect%' AND abs(cv1) > 10"
ROWS = {  # 6.2: (ce, cne, cv1, cv2, cv3)
    "A": ("eq", "neq", 10, 17, "expectA"),
    "B": ("eq", "neq", 11, 22, "expectB"),
    "C": ("eq", "neq", 7, 2, "expectA"),
    "D": ("eq", "neq", 10, 22, "expectD"),
    "E": ("neq", "neq", 11, 22, "expectA"),
    "F": ("eq", "neq", 11, 21, "expectF"),
    "G": ("eq", "neq", 10, 17, "expectE"),
    "H": ("eq", "eq", 10, 22, "expectF"),
    "I": ("eq", "eq", 15, 22, "WRONG"),
}


def row(name: str) -> dict[str, Any]:
    return dict(zip(("ce", "cne", "cv1", "cv2", "cv3"), ROWS[name], strict=True))


BAETYL_EXAMPLES: list[tuple[str, str, Any, SqlContext, dict[str, Any] | None]] = [
    (
        "1 docs screenshot",
        "select qos() as qos, topic() as topic, * where id < 10",
        {"id": 1},
        CTX,
        {"id": 1, "qos": 0, "topic": "t"},
    ),
    (
        "2 tsdb passes",
        TSDB,
        TSDB_IN,
        SqlContext(topic="data"),
        {"temperature": 67.5, "ts": 1568817178, "unit": "℃"},
    ),
    ("3 tsdb filtered", TSDB, {**TSDB_IN, "temperature": 35.6}, SqlContext(topic="data"), None),
    (
        "4 select * is identity",
        "select *",
        {"a": 1, "b": [True, None, {"c": "d"}], "e": False, "f": 0.5},
        CTX,
        {"a": 1, "b": [True, None, {"c": "d"}], "e": False, "f": 0.5},
    ),
    (
        "5 explicit column overrides * even when * is last",
        MULTI,
        {"device": "multiDestX", "data": "x", "value": 0, "boolValue": False, "doubleValue": 0.1},
        MULTI_CTX,
        {
            "device": "multiDestX",
            "data": "multi/test",
            "value": 0,
            "boolValue": False,
            "doubleValue": 0.1,
        },
    ),
    (
        "6 missing selected field is null",
        MULTI,
        {"data": "wrong", "value": 0, "boolValue": False, "doubleValue": 0.1},
        MULTI_CTX,
        {"data": "multi/test", "value": 0, "boolValue": False, "doubleValue": 0.1, "device": None},
    ),
    (
        "7 first message, no key",
        SELECT_MANY,
        {"device": "D1", "data": "d", "value": 10, "boolValue": True, "doubleValue": 1.5},
        CTX,
        {"key": "D1", "value": None, "data": 10, "boolValue": 1},
    ),
    (
        "7 with key, boolean becomes 0",
        SELECT_MANY,
        {
            "device": "D2",
            "data": "d",
            "value": 14,
            "boolValue": False,
            "key": "K",
            "doubleValue": 2,
        },
        CTX,
        {"key": "D2", "value": "K", "data": 14, "boolValue": 0},
    ),
    (
        "8 value below 10",
        SELECT_MANY,
        {"device": "D3", "data": "d", "value": 9, "boolValue": True, "key": "K"},
        CTX,
        None,
    ),
    (
        "9 functions",
        SELECT_FUNCTIONS,
        {"device": "device_abc", "value": 3, "doubleValue": 2.5, "other": 1},
        CTX,
        {"value": 4, "doubleValue": 7.5, "ceilValue": 3, "floorValue": 2, "modValue": 2.5},
    ),
    (
        "9 functions, remainder",
        SELECT_FUNCTIONS,
        {"device": "device_abc", "value": 2, "doubleValue": 5.5},
        CTX,
        {"value": 3, "doubleValue": 11.0, "ceilValue": 6, "floorValue": 5, "modValue": 1.5},
    ),
    (
        "10 other device",
        SELECT_FUNCTIONS,
        {"device": "device_xyz", "value": 3, "doubleValue": 2.5},
        CTX,
        None,
    ),
    (
        "11 custom functions on {}",
        "select topic() as topic, qos() as `value`",
        {},
        SqlContext(topic="custom/functions"),
        {"topic": "custom/functions", "value": 0},
    ),
    (
        "11 custom functions on any JSON",
        "select topic() as topic, qos() as `value`",
        {"topic": "x", "value": 9},
        SqlContext(topic="custom/functions"),
        {"topic": "custom/functions", "value": 0},
    ),
    *[(f"13 row {r}", WHERE_13, row(r), CTX, row(r) if r in "ABCDG" else None) for r in ROWS],
    *[(f"14 row {r}", WHERE_14, row(r), CTX, row(r) if r in "BEF" else None) for r in ROWS],
    (
        "15 nested, passes",
        NEST,
        {"key": "k", "value": "v", "nestMsg": {"device": "X", "value": 3, "extra": True}},
        CTX,
        {"key": "X", "value": 3},
    ),
    (
        "15 nested value is 5",
        NEST,
        {"key": "k", "value": "v", "nestMsg": {"device": "X", "value": 5}},
        CTX,
        None,
    ),
    ("15 nested, empty message", NEST, {}, CTX, None),
]


@pytest.mark.parametrize(
    ("sql", "payload", "ctx", "expected"),
    [case[1:] for case in BAETYL_EXAMPLES],
    ids=[case[0] for case in BAETYL_EXAMPLES],
)
def test_baetyl_examples(sql: str, payload: Any, ctx: SqlContext, expected: Any) -> None:
    assert strict(run(sql, payload, ctx)) == strict(expected)


def test_baetyl_example_1_and_2_serialise_like_the_screenshots() -> None:
    """Baetyl writes a Go map: compact JSON with sorted keys."""
    out = run("select qos() as qos, topic() as topic, * where id < 10", b'{"id":1}')
    assert orjson.dumps(out, option=orjson.OPT_SORT_KEYS) == b'{"id":1,"qos":0,"topic":"t"}'
    out = run(TSDB, TSDB_IN)
    expected = '{"temperature":67.5,"ts":1568817178,"unit":"℃"}'.encode()
    assert orjson.dumps(out, option=orjson.OPT_SORT_KEYS) == expected


def test_baetyl_example_12_timestamps_and_ids() -> None:
    sql = (
        "select CURRENT_TIMESTAMP AS current, LOCALTIMESTAMP() AS local, "
        "uuid() as uuid, newid() as newId"
    )
    before = time.time_ns() // 1_000_000
    out = run(sql, {"any": "thing"}, SqlContext(topic="custom/functions"))
    after = time.time_ns() // 1_000_000
    assert out is not None and set(out) == {"current", "local", "uuid", "newId"}
    assert before <= out["current"] <= after and before <= out["local"] <= after
    assert isinstance(out["uuid"], str) and isinstance(out["newId"], str)
    assert out["uuid"] != out["newId"]
    uuid.UUID(out["uuid"]), uuid.UUID(out["newId"])
    again = run(sql, {}, CTX)
    assert again is not None and again["uuid"] != out["uuid"]


# -- semantics -------------------------------------------------------------------------------

MSG = {
    "id": 7,
    "temp": 31.5,
    "site": "berlin",
    "flag": True,
    "off": False,
    "none": None,
    "a": {"b": {"c": 42}, "x": 1},
    "a.b": "dotted key",
    "a-b": "dashed",
    "list": [1, 2, 3],
    "big": 9223372036854775807,
    "neg": -7,
    "s1": "10",
    "pct": "50%_off",
}

SEMANTICS: list[tuple[str, dict[str, Any] | None]] = [
    # output names and nested fields
    ("SELECT a.b.c", {"a.b.c": 42}),
    ("SELECT a.x, a.b", {"a.x": 1, "a.b": {"c": 42}}),
    ("SELECT `a.b`", {"a.b": "dotted key"}),
    ("SELECT `a-b`, a.`x`", {"a-b": "dashed", "a.x": 1}),
    (
        "SELECT a.missing.deeper, id.x, list.x",
        {"a.missing.deeper": None, "id.x": None, "list.x": None},
    ),
    (
        "SELECT ceil(temp), id + 1, 'lit', -id",
        {"ceil(temp)": 32, "id + 1": 8, "'lit'": "lit", "-id": -7},
    ),
    ("SELECT id AS 'quoted alias', id AS x, id * 2 AS x", {"quoted alias": 7, "x": 14}),
    ("SELECT *, 1 AS id", {**MSG, "id": 1}),
    ("SELECT 1 AS id, *, *", {**MSG, "id": 1}),
    ("SELECT id FROM `some/topic` WHERE id = 7", {"id": 7}),
    ("SELECT id FROM anything;", {"id": 7}),
    ("sElEcT ID, id As X wHeRe Id iS nUlL Or iD > 1", {"ID": None, "X": 7}),
    # arithmetic
    (
        "SELECT 2 + 3 * 4 AS a, (2 + 3) * 4 AS b, 7 - 2 - 1 AS c, -2 * -3 AS d",
        {"a": 14, "b": 20, "c": 4, "d": 6},
    ),
    (
        "SELECT 7 / 2 AS a, 4 / 2 AS b, 1 / 0 AS c, 1.0 / 0 AS d, id / 0.5 AS e",
        {"a": 3.5, "b": 2, "c": None, "d": None, "e": 14.0},
    ),
    (
        "SELECT neg % 3 AS a, 7 % -3 AS b, 5 % 0 AS c, mod(7.5, 2) AS d, mod(neg, 0) AS e",
        {"a": -1, "b": 1, "c": None, "d": 1.5, "e": None},
    ),
    (
        "SELECT site + 1 AS a, s1 * 2 AS b, flag + 1 AS c, none + 1 AS d, missing - 1 AS e",
        {"a": None, "b": None, "c": None, "d": None, "e": None},
    ),
    (
        "SELECT -site AS a, +id AS b, -(-id) AS c, a * 2 AS d",
        {"a": None, "b": 7, "c": 7, "d": None},
    ),
    (
        "SELECT big + 1 AS a, big * big AS b, 1e308 * 10 AS c",
        {"a": 9223372036854775808, "b": 8.507059173023462e37, "c": None},
    ),
    # comparisons and three-valued logic
    ("SELECT id WHERE temp > 30 AND site LIKE 'b%'", {"id": 7}),
    ("SELECT id WHERE missing > 1", None),
    ("SELECT id WHERE NOT missing > 1", None),
    ("SELECT id WHERE missing <> 1", None),
    ("SELECT id WHERE missing > 1 OR id = 7", {"id": 7}),
    ("SELECT id WHERE missing > 1 AND id = 7", None),
    ("SELECT id WHERE NOT (missing > 1 AND id = 8)", {"id": 7}),
    ("SELECT id WHERE NOT id = 8", {"id": 7}),
    ("SELECT id WHERE id = 7.0 AND 7 = id AND id != 8 AND 8 > id AND id >= 7", {"id": 7}),
    ("SELECT id WHERE s1 = 10", None),  # string vs number: null, no coercion
    ("SELECT id WHERE NOT s1 = 10", None),
    ("SELECT id WHERE site > 'b' AND site < 'c' AND site = 'berlin'", {"id": 7}),
    ("SELECT id WHERE flag = TRUE AND off = FALSE AND off <> flag", {"id": 7}),
    ("SELECT id WHERE flag > FALSE", None),
    ("SELECT id WHERE flag", {"id": 7}),
    ("SELECT id WHERE id", {"id": 7}),
    ("SELECT id WHERE off OR 0", None),
    ("SELECT id WHERE site", None),
    ("SELECT id WHERE none = NULL", None),
    ("SELECT id WHERE a = a AND list = list AND a.b <> a", {"id": 7}),
    ("SELECT id WHERE TRUE", {"id": 7}),
    ("SELECT id WHERE 1 = 2", None),
    ("SELECT id WHERE NULL", None),
    (
        "SELECT id > 5 AS gt, id < 5 AS lt, missing > 5 AS unknown, flag AS f",
        {"gt": 1, "lt": 0, "unknown": None, "f": 1},
    ),
    # IN
    ("SELECT id WHERE site IN ('paris', 'berlin')", {"id": 7}),
    ("SELECT id WHERE id IN (1, 7.0)", {"id": 7}),
    ("SELECT id WHERE id IN (1, 2)", None),
    ("SELECT id WHERE id NOT IN (1, 2)", {"id": 7}),
    ("SELECT id WHERE id NOT IN (1, NULL)", None),
    ("SELECT id WHERE id NOT IN (1, 'x')", None),
    ("SELECT id WHERE id IN (7, NULL)", {"id": 7}),
    ("SELECT id WHERE missing NOT IN (1, 2)", None),
    ("SELECT id WHERE flag IN (1, TRUE)", {"id": 7}),
    ("SELECT id WHERE flag IN (1)", None),
    ("SELECT id WHERE id IN (neg + 14, 0)", {"id": 7}),
    ("SELECT id WHERE id NOT IN (neg, missing)", None),
    ("SELECT id WHERE site IN (concat('ber', 'lin'))", {"id": 7}),
    # LIKE
    ("SELECT id WHERE site LIKE 'ber%'", {"id": 7}),
    ("SELECT id WHERE site LIKE '%lin'", {"id": 7}),
    ("SELECT id WHERE site LIKE '%rl%'", {"id": 7}),
    ("SELECT id WHERE site LIKE 'b_rl_n'", {"id": 7}),
    ("SELECT id WHERE site LIKE 'b%l_n'", {"id": 7}),
    ("SELECT id WHERE site LIKE 'berlin'", {"id": 7}),
    ("SELECT id WHERE site LIKE 'Berlin'", None),
    ("SELECT id WHERE site LIKE 'b_rl'", None),
    ("SELECT id WHERE site LIKE '%e%i%'", {"id": 7}),
    ("SELECT id WHERE site LIKE '%i%e%'", None),
    ("SELECT id WHERE site LIKE 'b.*'", None),
    ("SELECT id WHERE site NOT LIKE 'p%'", {"id": 7}),
    ("SELECT id WHERE id LIKE '7'", None),
    ("SELECT id WHERE id NOT LIKE '7'", None),
    ("SELECT id WHERE pct LIKE '50!%!_%' ESCAPE '!' AND pct LIKE '%!%%' ESCAPE '!'", {"id": 7}),
    ("SELECT id WHERE pct LIKE '50!%x%' ESCAPE '!'", None),
    ("SELECT id WHERE `a.b` LIKE 'dotted!_%' ESCAPE '!'", None),
    ("SELECT id WHERE pct LIKE '50%%' AND pct LIKE '__%_o__'", {"id": 7}),
    ("SELECT id WHERE pct LIKE '5_' OR pct LIKE '%_x_%'", None),
    ("SELECT id WHERE site LIKE concat(lower('BER'), '%')", {"id": 7}),
    # IS NULL, BETWEEN
    ("SELECT id WHERE missing IS NULL AND none IS NULL AND id IS NOT NULL", {"id": 7}),
    ("SELECT id WHERE site IS NULL", None),
    ("SELECT missing IS NULL AS m, a.b IS NOT NULL AS n", {"m": 1, "n": 1}),
    ("SELECT id WHERE temp BETWEEN 30 AND 32", {"id": 7}),
    ("SELECT id WHERE id BETWEEN 8 AND 9", None),
    ("SELECT id WHERE id NOT BETWEEN 8 AND 9", {"id": 7}),
    ("SELECT id WHERE missing NOT BETWEEN 8 AND 9", None),
    ("SELECT id WHERE site BETWEEN 'a' AND 'c'", {"id": 7}),
    # functions
    (
        "SELECT ceil(temp) AS a, floor(temp) AS b, ceil(-1.5) AS c, floor(id) AS d, "
        "ceil(site) AS e",
        {"a": 32, "b": 31, "c": -1, "d": 7, "e": None},
    ),
    ("SELECT abs(neg) AS a, abs(-2.5) AS b, abs(site) AS c", {"a": 7, "b": 2.5, "c": None}),
    (
        "SELECT round(2.5) AS a, round(-2.5) AS b, round(2.675, 2) AS c, round(1250, -2) AS d, "
        "round(id, 1) AS e, round(temp, site) AS f",
        {"a": 3, "b": -3, "c": 2.68, "d": 1300, "e": 7, "f": None},
    ),
    (
        "SELECT lower('AbC') AS a, upper(site) AS b, lower(id) AS c",
        {"a": "abc", "b": "BERLIN", "c": None},
    ),
    (
        "SELECT concat(site, '-', id, '-', temp, flag) AS a, concat(site, missing) AS b",
        {"a": "berlin-7-31.5true", "b": None},
    ),
    (
        "SELECT length('héllo') AS a, length(list) AS b, length(id) AS c",
        {"a": 5, "b": 3, "c": None},
    ),
    (
        "SELECT coalesce(missing, none, site) AS a, coalesce(missing) AS b",
        {"a": "berlin", "b": None},
    ),
    (
        "SELECT QOS() AS q, Topic() AS t, CLIENTID() AS c, clientid() AS d",
        {"q": 2, "t": "t", "c": "c", "d": "c"},
    ),
    (
        "SELECT CURRENT_TIMESTAMP AS a, current_timestamp() AS b, LOCALTIMESTAMP AS c, "
        "localtimestamp() AS d",
        {"a": 1700000000123, "b": 1700000000123, "c": 1700000000123, "d": 1700000000123},
    ),
    ("SELECT 'it''s' AS a, `we``ird` AS b", {"a": "it's", "b": None}),
]


@pytest.mark.parametrize(("sql", "expected"), SEMANTICS, ids=[s for s, _ in SEMANTICS])
def test_semantics(sql: str, expected: dict[str, Any] | None) -> None:
    ctx = SqlContext(qos=2, topic="t", client_id="c", timestamp_ms=1700000000123)
    assert strict(run(sql, MSG, ctx)) == strict(expected)


def test_booleans_kept_when_bool_as_int_is_off() -> None:
    out = run("SELECT flag, id > 1 AS gt, off", MSG, bool_as_int=False)
    assert strict(out) == strict({"flag": True, "gt": True, "off": False})
    out = run("SELECT *, flag AS f", MSG, bool_as_int=True)
    assert out is not None and out["flag"] is True and strict(out["f"]) == strict(1)


# -- payloads that are not JSON objects ------------------------------------------------------

ODD_PAYLOADS = [
    b"",
    b"[1, 2]",
    b"3",
    b'"text"',
    b"null",
    b"true",
    b"not json",
    b'{"a":',
    b"\xff\xfe",
]


@pytest.mark.parametrize("payload", ODD_PAYLOADS)
def test_non_object_payloads_have_no_fields(payload: bytes) -> None:
    assert run("SELECT *", payload) == {}
    assert run("SELECT a, topic() AS topic", payload) == {"a": None, "topic": "t"}
    assert run("SELECT * WHERE a > 1", payload) is None
    assert run("SELECT * WHERE a IS NULL", payload) == {}


def test_payload_types_and_default_context() -> None:
    query = compile_sql("SELECT a, topic() AS t, qos() AS q, clientid() AS c")
    expected = {"a": 1, "t": "", "q": 0, "c": ""}
    assert query.evaluate(b'{"a":1}') == expected
    assert query.evaluate(bytearray(b'{"a":1}')) == expected
    assert query.evaluate(memoryview(b'{"a":1}')) == expected
    assert query.evaluate(None) == {**expected, "a": None}  # type: ignore[arg-type]
    assert query.evaluate(12345) == {**expected, "a": None}  # type: ignore[arg-type]


def test_evaluate_parsed_leaves_input_untouched() -> None:
    query = compile_sql("SELECT *, 2 AS a, b + 1 AS c")
    message = {"a": 1, "b": 2}
    assert query.evaluate_parsed(message) == {"a": 2, "b": 2, "c": 3}
    assert message == {"a": 1, "b": 2}
    assert query.evaluate_parsed([1, 2]) == {"a": 2, "c": None}
    assert compile_sql("SELECT *").evaluate_parsed(message) is not message


def test_projections_read_the_input_not_earlier_outputs() -> None:
    out = run("SELECT *, a + 1 AS a, a * 10 AS b", {"a": 1})
    assert out == {"a": 2, "b": 10}


def test_query_object() -> None:
    query = compile_sql("SELECT * WHERE x = 1")
    assert isinstance(query, Query)
    assert query.source == "SELECT * WHERE x = 1"
    assert "SELECT * WHERE x = 1" in repr(query)
    assert SqlContext() == SqlContext(qos=0, topic="", client_id="", timestamp_ms=None)


def test_like_on_long_strings_is_fast() -> None:
    """Patterns with many % must not backtrack exponentially."""
    query = compile_sql("SELECT * WHERE s LIKE '%a%a%a%a%a%a%a%a%b'")
    payload = orjson.dumps({"s": "a" * 20_000})
    start = time.perf_counter()
    assert query.evaluate(payload) is None
    assert time.perf_counter() - start < 0.5


# -- syntax errors ---------------------------------------------------------------------------

ERRORS: list[tuple[str, str, int, int]] = [  # sql, message fragment, line, column
    ("", "empty query", 1, 1),
    ("   \n ", "empty query", 1, 1),
    ("UPDATE t SET a = 1", "expected SELECT, found 'UPDATE'", 1, 1),
    ("SELECT", "expected a projection (an expression or *), found end of query", 1, 7),
    ("SELECT , a", "expected a projection", 1, 8),
    ("SELECT a,", "expected a projection", 1, 10),
    ("SELECT a WHERE", "expected a condition after WHERE, found end of query", 1, 15),
    ("SELECT a + WHERE b", "expected an expression, found keyword WHERE", 1, 12),
    ("SELECT a WHERE b = ", "expected an expression, found end of query", 1, 20),
    ("SELECT 'abc", "unterminated string (missing closing ')", 1, 8),
    ("SELECT a WHERE b = 'it''s", "unterminated string", 1, 20),
    ("SELECT `abc", "unterminated quoted identifier", 1, 8),
    ("SELECT ``", "empty `quoted identifier`", 1, 8),
    ('SELECT "a"', "double quotes are not supported", 1, 8),
    ("SELECT foo(1)", "unknown function foo()", 1, 8),
    ("SELECT a WHERE NOW() > 1", "unknown function now()", 1, 16),
    ("SELECT mod(1)", "mod() takes 2 arguments, got 1", 1, 8),
    ("SELECT qos(1)", "qos() takes 0 arguments, got 1", 1, 8),
    ("SELECT round(1, 2, 3)", "round() takes 1 to 2 arguments, got 3", 1, 8),
    ("SELECT concat()", "concat() takes at least 1 argument, got 0", 1, 8),
    ("SELECT abs(1,)", "expected a function argument, found ')'", 1, 14),
    ("SELECT a b", "expected ',', FROM, WHERE or end of query, found 'b'", 1, 10),
    ("SELECT a WHERE b = 1 c", "expected end of query, found 'c'", 1, 22),
    ("SELECT a WHERE b = 1 = 2", "expected end of query, found '='", 1, 22),
    ("SELECT * * 2", "expected ',', FROM, WHERE or end of query, found '*'", 1, 10),
    ("SELECT a WHERE (b = 1", "expected ')', found end of query", 1, 22),
    ("SELECT a WHERE b = 1)", "expected end of query, found ')'", 1, 21),
    ("SELECT a FROM", "expected a source name after FROM", 1, 14),
    ("SELECT a WHERE b NOT 1", "expected IN, LIKE or BETWEEN after NOT", 1, 22),
    ("SELECT a WHERE b IS 1", "expected NULL after IS", 1, 21),
    ("SELECT a WHERE b IS NOT TRUE", "expected NULL after IS NOT", 1, 25),
    ("SELECT a WHERE b IN ()", "expected a value in the IN list, found ')'", 1, 22),
    ("SELECT a WHERE b IN 1", "expected '(' after IN", 1, 21),
    ("SELECT a WHERE b IN (1 2)", "expected ',' or ')' in the IN list", 1, 24),
    ("SELECT a WHERE b LIKE 'x' ESCAPE 'ab'", "one-character string after ESCAPE", 1, 34),
    ("SELECT a WHERE b BETWEEN 1 2", "expected AND in BETWEEN", 1, 28),
    ("SELECT a AS", "expected a name after AS, found end of query", 1, 12),
    ("SELECT a AS 1", "expected a name after AS, found number 1", 1, 13),
    ("SELECT a.(b)", "expected a field name after '.'", 1, 10),
    ("SELECT a ? b", "unexpected character '?'", 1, 10),
    ("SELECT 1e999", "number '1e999' is out of range", 1, 8),
    ("SELECT a WHERE select = 1", "expected an expression, found keyword SELECT", 1, 16),
    ("SELECT CURRENT_TIMESTAMP(1)", "expected ')' after CURRENT_TIMESTAMP(", 1, 26),
    ("SELECT a\nWHERE b = = 1", "expected an expression, found '='", 2, 11),
    ("SELECT a\r\n  WHERE b ~ 1", "unexpected character '~'", 2, 11),
    ("SELECT " + "(" * 60 + "1" + ")" * 60, "nested too deeply", 1, 48),
    ("SELECT " + "-" * 60 + "1", "nested too deeply", 1, 48),
    ("SELECT a WHERE " + "NOT " * 60 + "b", "nested too deeply", 1, 176),
    ("SELECT " + " + ".join(["a"] * 150), "too complex", 1, 208),
]


@pytest.mark.parametrize(
    ("sql", "fragment", "line", "column"), ERRORS, ids=[e[0][:40] for e in ERRORS]
)
def test_syntax_errors(sql: str, fragment: str, line: int, column: int) -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        compile_sql(sql)
    err = caught.value
    assert fragment in err.message
    assert (err.line, err.column) == (line, column), str(err)
    text = str(err)
    assert text.startswith(f"{err.message} (line {line}, column {column})")
    if sql.strip():  # the caret sits under the offending character
        excerpt, caret_line = text.split("\n")[1:3]
        line_text = sql.split("\n")[line - 1].rstrip("\r") + " "
        assert caret_line.strip() == "^"
        assert (excerpt + " ")[caret_line.index("^")] == line_text[column - 1]
        assert excerpt.strip() in line_text


def test_syntax_error_details() -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        compile_sql("SELECT a WHERE b = 'x")
    err = caught.value
    assert isinstance(err, ValueError)
    assert err.position == 19 and err.source == "SELECT a WHERE b = 'x"
    assert str(err) == (
        "unterminated string (missing closing ') (line 1, column 20)\n"
        "  SELECT a WHERE b = 'x\n"
        "                     ^"
    )
    with pytest.raises(SqlSyntaxError, match="query must be a string"):
        compile_sql(b"SELECT *")  # type: ignore[arg-type]
    assert SqlSyntaxError("boom", 3).column == 4


def test_long_line_error_excerpt_is_trimmed() -> None:
    sql = "SELECT " + ", ".join(f"f{i}" for i in range(200)) + " ?"
    with pytest.raises(SqlSyntaxError) as caught:
        compile_sql(sql)
    excerpt, caret = str(caught.value).split("\n")[1:3]
    assert len(excerpt) <= 202 and excerpt[caret.index("^")] == "?"


def test_reserved_words_need_backticks_but_other_names_do_not() -> None:
    assert run(
        "SELECT value, key, data, `select`", {"value": 1, "key": 2, "data": 3, "select": 4}
    ) == {
        "value": 1,
        "key": 2,
        "data": 3,
        "select": 4,
    }
    assert run("SELECT abs, abs(abs) AS b", {"abs": -1}) == {"abs": -1, "b": 1}
    with pytest.raises(SqlSyntaxError, match="found keyword FROM"):
        compile_sql("SELECT a, from")
