"""The recorder survives every entry it reads: garbage, records nested too deep, rows a database
refuses. What cannot be written is moved to `<prefix>:records:poison` with the reason and
acknowledged; the records around it are written. Real Redis, real worker processes, and the
three databases for the rows they refuse."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select
from tests.conftest import call_ok, fresh_database, wait_for
from tests.test_records import database  # noqa: F401  (fixture: sqlite, postgresql, mysql)

from fnhub.calling.errors import CallError
from fnhub.calling.maker import KWARGS_MAX_DEPTH
from fnhub.keys import RECORDER_GROUP
from fnhub.queue import ResultBatch, add_result, iter_results
from fnhub.records import JSON_MAX_DEPTH, TRUNCATED_MARKER, Recorder
from fnhub.store.db import Database
from fnhub.store.models import TaskRecord
from fnhub.tasks import Status, Task, encode, result_for

SCRIPT = """
import fnhub

@fnhub.api("take anything")
def take(**kwargs):
    return len(kwargs)

@fnhub.api("an ordinary task")
def plain(n: int = 0):
    return n + 1
"""


def nested(depth: int, leaf: Any = 1) -> dict[str, Any]:
    value: Any = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, dict) and value:
        value = next(iter(value.values()))
        depth += 1
    return depth


@pytest.fixture
def worker(client, publish, start_worker):  # type: ignore[no-untyped-def]
    publish({"poison": SCRIPT})
    start_worker(processes=1)


def _record(services, task_id: str) -> TaskRecord | None:  # type: ignore[no-untyped-def]
    with services.db.session() as session:
        return session.get(TaskRecord, task_id)


def _recorded(services, client, timeout: float = 15) -> TaskRecord:  # type: ignore[no-untyped-def]
    """Run an ordinary task and wait for its record: the recorder still works."""
    done = call_ok(client, "poison.plain", {"n": 1})
    return wait_for(lambda: _record(services, done.id), timeout=timeout)


def _poison(services) -> list[dict[bytes, bytes]]:  # type: ignore[no-untyped-def]
    return [fields for _id, fields in services.redis.xrange(services.keys.records_poison)]


def test_deep_kwargs_through_the_client(client, services, worker) -> None:
    """Kwargs nested past KWARGS_MAX_DEPTH are refused clearly (they used to raise
    RecursionError, or past orjson's 254 levels stop the recorder for good); kwargs deeper
    than JSON columns take are recorded cut and marked; the recorder goes on either way."""
    for depth in (1000, KWARGS_MAX_DEPTH + 1):
        with pytest.raises(CallError) as refused:
            client.call("poison.take", {"deep": nested(depth)})
        assert refused.value.kind == "invalid_kwargs"
        assert f"nest deeper than {KWARGS_MAX_DEPTH} levels" in str(refused.value)

    deep = call_ok(client, "poison.take", {"deep": nested(KWARGS_MAX_DEPTH - 1)})
    row = wait_for(lambda: _record(services, deep.id), timeout=15)
    assert row.status == "success" and row.result == 1
    node, level = row.kwargs["deep"], 2  # the kwargs object is the first level
    while "a" in node:
        node, level = node["a"], level + 1
    assert node == {TRUNCATED_MARKER: f"nested deeper than {JSON_MAX_DEPTH} levels"}
    assert level == JSON_MAX_DEPTH + 1
    assert _recorded(services, client).status == "success"
    assert _poison(services) == []


def _result_with_kwargs_nested(depth: int) -> bytes:
    """The `rs` field of a records entry whose one result's kwargs hold arrays nested `depth`
    deep (no encoder here makes one that deep: it is written byte by byte)."""
    head = msgspec.msgpack.encode({"id": "deep", "function": "s.f", "status": "success"})
    kwargs = msgspec.msgpack.encode("kwargs") + b"\x81" + msgspec.msgpack.encode("a")
    return b"\x91\x84" + head[1:] + kwargs + b"\x91" * depth + b"\xc0"


def test_garbage_entries_are_moved_aside_and_acknowledged(client, services, worker) -> None:
    keys = services.keys
    call_ok(client, "poison.plain")  # the recorder's group exists
    garbage = [
        {b"x": b"no results field"},
        {b"rs": b"\xc1 not msgpack"},
        {b"rs": _result_with_kwargs_nested(5000)},  # too deep to decode: it stopped the recorder
    ]
    ids = [services.redis.xadd(keys.records, fields) for fields in garbage]
    assert _recorded(services, client).status == "success"
    moved = wait_for(lambda: len(_poison(services)) == 3 and _poison(services))
    for fields, entry_id, raw in zip(moved, ids, garbage, strict=True):
        assert fields[b"poison_entry"] == entry_id
        assert fields[b"poison_reason"]
        assert {k: v for k, v in fields.items() if not k.startswith(b"poison_")} == raw
    assert b"DecodeError" in moved[0][b"poison_reason"]
    assert b"RecursionError" in moved[2][b"poison_reason"]
    assert services.redis.xrange(keys.records, ids[0], ids[-1]) == []
    assert services.redis.xpending(keys.records, RECORDER_GROUP)["pending"] == 0


def _result(attempt: int = 1, **fields: Any) -> Any:
    task = Task(function="s.f", kwargs={"k": 1}, attempt=attempt)
    now = time.time()
    return result_for(task, Status.SUCCESS, start_time=now, end_time=now, result=1, **fields)


def test_a_row_at_fault_is_set_aside_and_the_rows_around_it_are_written(
    database,  # noqa: F811
    settings,
    services,
) -> None:
    """One records entry holds a good result and one whose row no database takes (an attempt
    past 64-bit integers); another entry holds a good one. The bad row is found by halving the
    batch, moved aside and written without its data; both good rows are written whole."""
    keys = services.keys
    first, bad, last = _result(), _result(attempt=2**63), _result()
    batch = ResultBatch()
    batch.records += [encode(first), encode(bad)]
    pipe = services.redis.pipeline()
    batch.flush(pipe, keys)
    pipe.execute()
    pipe = services.redis.pipeline()
    add_result(pipe, keys, Task(id=last.id, function="s.f"), last)
    pipe.execute()
    recorder = Recorder(database, services.redis, keys, settings, "t1")
    recorder.ensure_group()
    assert recorder.run_once(block_ms=200) == 3
    with database.session() as session:
        rows = {r.id: r for r in session.execute(select(TaskRecord)).scalars()}
    assert rows.keys() == {first.id, bad.id, last.id}
    for good in (first, last):
        assert (rows[good.id].kwargs, rows[good.id].result) == ({"k": 1}, 1)
    kept = rows[bad.id]
    assert (kept.status, kept.kwargs, kept.result) == ("success", None, None)
    assert kept.error_type == "RecordIncomplete"
    assert keys.records_poison in kept.error_message
    [moved] = _poison(services)
    assert moved[b"poison_task"] == bad.id.encode()
    assert moved[b"poison_reason"]
    assert [r.id for r in iter_results(moved)] == [bad.id]  # as a records entry: replayable
    assert services.redis.xlen(keys.records) == 0
    assert services.redis.xpending(keys.records, RECORDER_GROUP)["pending"] == 0


def test_nul_in_output_is_refused_by_postgresql_alone(settings, services, tmp_path) -> None:
    """PostgreSQL refuses NUL characters in text: a task that printed one used to stop every
    write after it. Its record is now written without its output; the next one whole."""
    gen = fresh_database("postgresql", tmp_path)
    db = Database(next(gen))
    try:
        db.migrate()
        keys = services.keys
        nul, after = _result(logs="a\x00b"), _result()
        pipe = services.redis.pipeline()
        for result in (nul, after):
            add_result(pipe, keys, Task(id=result.id, function="s.f"), result)
        pipe.execute()
        recorder = Recorder(db, services.redis, keys, settings, "t1")
        recorder.ensure_group()
        assert recorder.run_once(block_ms=200) == 2
        with db.session() as session:
            assert session.get(TaskRecord, after.id).result == 1
            assert session.get(TaskRecord, nul.id).error_type == "RecordIncomplete"
        [moved] = _poison(services)
        assert b"NUL" in moved[b"poison_reason"]
    finally:
        db.dispose()
        gen.close()


# -- arbitrary JSON as kwargs ------------------------------------------------------------------

_text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=8)
_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
_json = st.recursive(
    _leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3)
)
_deep = st.tuples(st.integers(0, 1200), st.booleans()).map(
    lambda spec: nested(spec[0]) if spec[1] else _nested_lists(spec[0])
)
_big = st.sampled_from([10_000, 990_000, 1_100_000]).map(lambda n: "x" * n)
_kwargs = st.dictionaries(_text, _json | _deep | _big, max_size=3)


def _nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.timeout(120)
def test_arbitrary_json_kwargs_never_stop_the_recorder(client, services, worker) -> None:
    """Whatever a caller sends is either refused with a CallError or run and recorded; the
    next ordinary task's record is written every time."""

    @hypothesis_settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(kwargs=_kwargs)
    def check(kwargs: dict[str, Any]) -> None:
        try:  # submitted: a reply would bring the kwargs back, which is not what is tested
            task = client.submit("poison.take", kwargs)
        except CallError as exc:
            assert exc.kind in ("invalid_kwargs", "too_large"), exc
            task = None
        assert _recorded(services, client, timeout=10).status == "success"
        if task is not None:  # ran before the ordinary task (one worker process, one queue)
            assert _record(services, task.id) is not None

    started = time.monotonic()
    check()
    assert time.monotonic() - started < 60
    assert services.redis.xpending(services.keys.records, RECORDER_GROUP)["pending"] == 0
