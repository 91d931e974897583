"""Task records on SQLite, PostgreSQL and MariaDB: batched upserts, retention, the off switch."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import msgspec
import pytest
from sqlalchemy import func, select
from tests.conftest import call_ok, fresh_database, wait_for

from fnhub import record_search, records, task_history
from fnhub.keys import RECORDER_GROUP, Keys
from fnhub.queue import ResultBatch, add_result, add_retrying, results_value
from fnhub.records import Recorder
from fnhub.store.db import Database
from fnhub.store.models import TaskAttempt, TaskRecord
from fnhub.tasks import Status, Task, TaskResult, encode, result_for


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def database(request, tmp_path) -> Iterator[Database]:
    gen = fresh_database(request.param, tmp_path)
    db = Database(next(gen))
    db.migrate()
    yield db
    db.dispose()
    gen.close()


def _results(keys: Keys, client, n: int, *, origin_id: str = "f", limit=None) -> list[str]:
    pipe = client.pipeline()
    ids = []
    for i in range(n):
        task = Task(function="s.f", origin_id=origin_id, kwargs={"i": i}, record_limit=limit)
        task.trigger_time = time.time() + i * 0.001
        now = time.time()
        add_result(
            pipe,
            keys,
            task,
            result_for(
                task,
                Status.SUCCESS,
                start_time=now,
                end_time=now + 0.01,
                result={"i": i},
                logs="line\n",
            ),
        )
        ids.append(task.id)
    pipe.execute()
    return ids


def _row_count(database: Database) -> int:
    with database.session() as session:
        return session.execute(select(func.count()).select_from(TaskRecord)).scalar()


def test_records_are_written_in_batches_on_every_database(database, settings, services):
    recorder = Recorder(database, services.redis, services.keys, settings, "t1")
    recorder.ensure_group()
    ids = _results(services.keys, services.redis, 2500)
    written = 0
    while written < 2500:
        batch = recorder.run_once(block_ms=200)
        assert batch <= 1000
        assert batch > 0
        written += batch
    assert _row_count(database) == 2500
    with database.session() as session:
        row = session.get(TaskRecord, ids[7])
        assert row.result == {"i": 7} and row.kwargs == {"i": 7}
        assert row.status == "success" and row.run_ms == pytest.approx(10, abs=1)
    assert services.redis.xlen(services.keys.records) == 0


def test_batched_entries_binary_kwargs_and_upserts(database, settings, services):
    """One records entry may carry many results (a worker's batch); bytes in kwargs are kept as
    base64; a later result for the same id replaces the earlier row; None stays NULL."""
    keys = services.keys
    binary = Task(function="s.f", kwargs={"raw": b"\xff\x00", "nested": [{"b": b"\x01"}]})
    plain = Task(function="s.f", kwargs={})
    queued = result_for(plain, Status.QUEUED)
    done = result_for(plain, Status.FAILURE, start_time=1.0, end_time=2.0, error_type="E")
    batch = ResultBatch()
    pipe = services.redis.pipeline()
    add_result(pipe, keys, binary, result_for(binary, Status.SUCCESS, result=None), batch)
    add_result(pipe, keys, plain, queued, batch)
    add_result(pipe, keys, plain, done, batch)
    batch.flush(pipe, keys)
    pipe.execute()
    assert services.redis.xlen(keys.records) == 1
    recorder = Recorder(database, services.redis, keys, settings, "t1")
    recorder.ensure_group()
    assert recorder.run_once(block_ms=200) == 3
    with database.session() as session:
        row = session.get(TaskRecord, binary.id)
        assert row.kwargs == {"raw": {"$base64": "/wA="}, "nested": [{"b": {"$base64": "AQ=="}}]}
        assert row.result is None
        row = session.get(TaskRecord, plain.id)
        assert (row.status, row.error_type, row.run_ms) == ("failure", "E", 1000.0)
    assert _row_count(database) == 2


def test_malformed_records_entries_are_skipped_and_acknowledged(database, settings, services):
    """An entry without results, or with bytes that are not results, is logged and moved to
    the poison stream; the good entries around it are written and nothing stays pending."""
    keys = services.keys
    good = Task(function="s.f")
    first = services.redis.xadd(keys.records, {"x": b"no results field"})
    second = services.redis.xadd(keys.records, {"rs": b"\xc1 not msgpack"})
    pipe = services.redis.pipeline()
    add_result(pipe, keys, good, result_for(good, Status.SUCCESS, result=1))
    pipe.execute()
    recorder = Recorder(database, services.redis, keys, settings, "t1")
    recorder.ensure_group()
    assert recorder.run_once(block_ms=200) == 1
    with database.session() as session:
        assert session.get(TaskRecord, good.id).result == 1
    assert services.redis.xlen(keys.records) == 0
    poison = [fields for _id, fields in services.redis.xrange(keys.records_poison)]
    assert [p[b"poison_entry"] for p in poison] == [first, second]
    assert poison[0][b"x"] == b"no results field"
    assert all(b"DecodeError" in p[b"poison_reason"] for p in poison)


def test_a_record_that_does_not_decode_is_set_aside_alone(database, settings, services):
    """The recorder decodes a record whole only when it writes it (its origin, limit and
    trigger time first): one that does not decode is moved to the poison stream by itself,
    and the records beside it in its entry are written."""
    keys = services.keys
    good = Task(function="s.f")
    good_result = result_for(good, Status.SUCCESS, result=1)
    bad = msgspec.msgpack.encode({"id": "bad-kwargs", "function": "s.f", "status": "success",
                                  "kwargs": 5})  # fmt: skip
    entry = services.redis.xadd(
        keys.records, {"rs": results_value([encode(good_result), bad, encode(good_result)])}
    )
    recorder = Recorder(database, services.redis, keys, settings, "t1")
    recorder.ensure_group()
    assert recorder.run_once(block_ms=200) == 3
    with database.session() as session:
        assert session.get(TaskRecord, good.id).result == 1
        assert session.get(TaskRecord, "bad-kwargs") is None
    assert services.redis.xlen(keys.records) == 0
    [(_id, poison)] = services.redis.xrange(keys.records_poison)
    assert (poison[b"poison_entry"], poison[b"poison_task"]) == (entry, b"bad-kwargs")
    assert poison[b"poison_reason"].startswith(b"ValidationError: Expected `object`")
    assert msgspec.msgpack.decode(poison[b"rs"]) == [msgspec.msgpack.decode(bad)]


def test_retention_keeps_last_n_per_origin(database, settings, services):
    recorder = Recorder(database, services.redis, services.keys, settings, "t1")
    recorder.ensure_group()
    _results(services.keys, services.redis, 30, origin_id="limited", limit=10)
    kept_ids = _results(services.keys, services.redis, 5, origin_id="other")
    while recorder.run_once(block_ms=100):
        pass
    recorder.prune()
    with database.session() as session:
        rows = session.execute(
            select(TaskRecord.origin_id, func.count()).group_by(TaskRecord.origin_id)
        ).all()
        assert dict(rows) == {"limited": 10, "other": 5}
        kept = session.execute(
            select(TaskRecord.kwargs).where(TaskRecord.origin_id == "limited")
        ).scalars()
        assert sorted(k["i"] for k in kept) == list(range(20, 30))  # the newest ten
        assert session.get(TaskRecord, kept_ids[0]) is not None


def test_a_batch_past_the_retention_limit_writes_only_the_newest(database, settings, services):
    """What `prune` would delete unread is not written at all (a burst costs `limit` rows);
    the first write already holds exactly what prune would keep."""
    settings.records_keep_per_origin = 4
    recorder = Recorder(database, services.redis, services.keys, settings, "t1")
    recorder.ensure_group()
    _results(services.keys, services.redis, 30, origin_id="limited", limit=10)
    _results(services.keys, services.redis, 7, origin_id="default")  # the default limit, 4
    _results(services.keys, services.redis, 5, origin_id="off", limit=0)
    _results(services.keys, services.redis, 3, origin_id="few", limit=10)
    assert recorder.run_once(block_ms=100) == 45  # every record is accounted for
    assert services.redis.xlen(services.keys.records) == 0
    with database.session() as session:
        rows = session.execute(select(TaskRecord.origin_id, TaskRecord.kwargs)).all()
    kept: dict[str, list[int]] = {}
    for origin_id, kwargs in rows:
        kept.setdefault(origin_id, []).append(kwargs["i"])
    assert {k: sorted(v) for k, v in kept.items()} == {
        "limited": list(range(20, 30)),
        "default": [3, 4, 5, 6],
        "few": [0, 1, 2],
    }
    assert recorder.prune() == 0


def _run_recorder(recorder: Recorder) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=recorder.run, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


def _count_writes(monkeypatch) -> list[int]:
    """The rows of each upsert the recorder sends to the database (the real upsert runs)."""
    writes: list[int] = []
    real = records.upsert_records

    def counted(db: Database, rows: list) -> None:
        writes.append(len(rows))
        real(db, rows)

    monkeypatch.setattr(records, "upsert_records", counted)
    return writes


def test_a_busy_origin_is_held_and_written_once(database, settings, services, monkeypatch):
    """Records coming faster than a read's worth are held (up to HOLD_SECONDS) and written
    together: an origin past its limit costs `limit` rows per hold, not per read."""
    monkeypatch.setattr(records, "HOLD_SECONDS", 5.0)  # ample for five reads on a slow host
    writes = _count_writes(monkeypatch)
    _results(services.keys, services.redis, 4500, origin_id="busy", limit=10)
    recorder = Recorder(database, services.redis, services.keys, settings, "t1")
    recorder.ensure_group()
    thread, stop = _run_recorder(recorder)
    try:
        wait_for(lambda: services.redis.xlen(services.keys.records) == 0, timeout=10)
    finally:
        stop.set()
        thread.join(10)
    assert writes == [10]  # five reads of up to 1000 entries, one write
    with database.session() as session:
        kept = session.execute(select(TaskRecord.kwargs)).scalars()
        assert sorted(k["i"] for k in kept) == list(range(4490, 4500))


def test_a_trickle_is_written_at_once(database, settings, services, monkeypatch):
    """Fewer records than a read's worth are written right after they are read."""
    monkeypatch.setattr(records, "HOLD_SECONDS", 30.0)
    recorder = Recorder(database, services.redis, services.keys, settings, "t1")
    recorder.ensure_group()
    thread, stop = _run_recorder(recorder)
    try:
        for n in (1, 2):
            _results(services.keys, services.redis, 2)
            wait_for(lambda n=n: _row_count(database) == 2 * n, timeout=2)
    finally:
        stop.set()
        thread.join(10)


def test_held_records_are_written_at_stop(database, settings, services, monkeypatch):
    monkeypatch.setattr(records, "HOLD_SECONDS", 30.0)
    keys = services.keys
    _results(keys, services.redis, 3000, origin_id="busy", limit=10)
    recorder = Recorder(database, services.redis, keys, settings, "t1")
    recorder.ensure_group()
    thread, stop = _run_recorder(recorder)
    try:  # all read, none written yet
        wait_for(lambda: services.redis.xpending(keys.records, RECORDER_GROUP)["pending"] == 3000)
        time.sleep(0.3)
        assert _row_count(database) == 0
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert _row_count(database) == 10
    assert services.redis.xlen(keys.records) == 0


def test_held_records_survive_a_database_outage(settings, services, tmp_path, monkeypatch):
    """A write that fails keeps what is held (and reads no more) until the database is back."""
    monkeypatch.setattr(records, "HOLD_SECONDS", 0.3)
    path = tmp_path / "records.db"
    database = Database(f"sqlite:///{path}")
    database.migrate()
    keys = services.keys
    _results(keys, services.redis, 2500, origin_id="busy", limit=10)
    recorder = Recorder(database, services.redis, keys, settings, "t1")
    recorder.ensure_group()
    with database.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE task_records RENAME TO gone")
    thread, stop = _run_recorder(recorder)
    try:
        wait_for(lambda: services.redis.xpending(keys.records, RECORDER_GROUP)["pending"] > 0)
        time.sleep(1.0)  # writes fail meanwhile
        assert services.redis.xlen(keys.records) == 2500
        with database.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE gone RENAME TO task_records")
        wait_for(lambda: services.redis.xlen(keys.records) == 0, timeout=15)
    finally:
        stop.set()
        thread.join(10)
    with database.session() as session:
        kept = session.execute(select(TaskRecord.kwargs)).scalars()
        assert sorted(k["i"] for k in kept) == list(range(2490, 2500))
    database.dispose()


def test_records_by_age(database, settings, services):
    settings.records_max_age_days = 1
    recorder = Recorder(database, services.redis, services.keys, settings, "t1")
    recorder.ensure_group()
    pipe = services.redis.pipeline()
    old = Task(function="s.f", trigger_time=time.time() - 3 * 86400)
    add_result(pipe, services.keys, old, result_for(old, Status.SUCCESS))
    pipe.execute()
    _results(services.keys, services.redis, 1)
    while recorder.run_once(block_ms=100):
        pass
    assert recorder.prune() == 1
    with database.session() as session:
        assert session.get(TaskRecord, old.id) is None


def test_worker_records_every_task_and_honours_the_off_switch(
    client, services, start_worker, settings
):
    services.scripts.publish(
        {
            "r": (
                "import fnhub\n@fnhub.api()\ndef on(): return 1\n"
                "@fnhub.api(record=False)\ndef off(): return 2\n"
            )
        }
    )
    start_worker(processes=1)
    on = call_ok(client, "r.on")
    call_ok(client, "r.off")

    def record():
        with services.db.session() as session:
            return session.get(TaskRecord, on.id)

    row = wait_for(record, timeout=10)
    assert row.status == "success" and row.function == "r.on" and row.wait_ms >= 0
    time.sleep(1.5)
    with services.db.session() as session:
        functions = session.execute(select(TaskRecord.function)).scalars().all()
    assert functions == ["r.on"]


def _attempt_result(task: Task, attempt: int, status: Status, error: str):
    now = time.time()
    run = msgspec.structs.replace(task, attempt=attempt)
    return run, result_for(
        run,
        status,
        start_time=now,
        end_time=now + 0.01,
        error_type="ValueError",
        error_message=error,
        traceback=f"Traceback ... {error}",
        logs=f"log of attempt {attempt}\n",
    )


def test_every_attempt_is_kept_and_a_record_never_goes_back(database, settings, services):
    """A retried task keeps its earlier attempts (`task_attempts`); its record holds the latest
    attempt even when an earlier one lands after it (two recorders), on every database."""
    keys = services.keys
    recorder = Recorder(database, services.redis, keys, settings, "t1")
    recorder.ensure_group()
    in_order = Task(function="s.f", kwargs={"n": 1})
    late = Task(function="s.f", kwargs={"n": 2})
    pipe = services.redis.pipeline()
    run, first = _attempt_result(in_order, 1, Status.FAILURE, "first")
    add_retrying(pipe, keys, run, first)
    run, second = _attempt_result(in_order, 2, Status.FAILURE, "second")
    add_result(pipe, keys, run, second)
    run, final = _attempt_result(late, 2, Status.SUCCESS, "")
    add_result(pipe, keys, run, final)
    pipe.execute()
    while recorder.run_once(block_ms=100):
        pass
    pipe = services.redis.pipeline()
    run, early = _attempt_result(late, 1, Status.FAILURE, "landed late")
    add_retrying(pipe, keys, run, early)
    pipe.execute()
    while recorder.run_once(block_ms=100):
        pass
    record = task_history.record_detail(database, in_order.id)
    assert (record["status"], record["attempt"], record["kwargs"]) == ("failure", 2, {"n": 1})
    assert [(a["attempt"], a["status"], a["error_message"]) for a in record["attempts"]] == [
        (1, "retrying", "first"),
        (2, "failure", "second"),
    ]
    assert record["attempts"][0]["logs"] == "log of attempt 1\n"
    assert "first" in record["attempts"][0]["traceback"]
    record = task_history.record_detail(database, late.id)
    assert (record["status"], record["attempt"]) == ("success", 2)
    assert [(a["attempt"], a["status"]) for a in record["attempts"]] == [
        (1, "retrying"),
        (2, "success"),
    ]


def _attempt_count(database: Database) -> int:
    with database.session() as session:
        return session.execute(select(func.count()).select_from(TaskAttempt)).scalar()


def test_pruning_takes_the_attempts_of_pruned_records(database, settings, services):
    settings.records_max_age_days = 1
    keys = services.keys
    recorder = Recorder(database, services.redis, keys, settings, "t1")
    recorder.ensure_group()
    old = Task(function="s.f", origin_id="aged", trigger_time=time.time() - 3 * 86400)
    tasks = [Task(function="s.f", origin_id="kept", record_limit=2) for _ in range(4)]
    for i, task in enumerate(tasks):
        task.trigger_time = time.time() + i
    pipe = services.redis.pipeline()
    for task in [old, *tasks]:
        run, first = _attempt_result(task, 1, Status.FAILURE, "first")
        add_retrying(pipe, keys, run, first)
        pipe.execute()  # one write per task: the limit applies to what prune finds
        while recorder.run_once(block_ms=100):
            pass
    assert _attempt_count(database) == 5
    assert recorder.prune() == 3  # the old one, and the two oldest of "kept"
    with database.session() as session:
        left = session.execute(select(TaskAttempt.task_id)).scalars().all()
    assert sorted(left) == sorted(t.id for t in tasks[2:])


def test_listing_pages_and_filters_on_every_database(database):
    """The keyset walk (ties on trigger time broken by id) and the error-text filter (any case,
    LIKE wildcards taken literally) hold on every database."""
    rows = []
    for i in range(60):
        failed = i % 2 == 0
        message = "Disk 50% FULL" if i % 4 == 0 else "disk 500 full"
        rows.append(
            TaskResult(
                id=f"{i:04d}t{i * 37 % 100:02d}",
                function="s.f",
                status="failure" if failed else "success",
                trigger_time=1000.0 + i // 4,
                error_type="OSError" if failed else None,
                error_message=message if failed else None,
            )
        )
    records.upsert_records(database, [records.to_row(r) for r in rows])

    def walk(where: task_history.RecordFilter) -> list[str]:
        ids, cursor = [], None
        while True:
            page = task_history.list_records(database, where, cursor=cursor, limit=7)
            ids += [item["id"] for item in page.items]
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor

    def newest_first(keep) -> list[str]:
        kept = [r for r in rows if keep(r)]
        return [r.id for r in sorted(kept, key=lambda r: (r.trigger_time, r.id), reverse=True)]

    assert walk(task_history.RecordFilter()) == newest_first(lambda r: True)
    assert walk(task_history.RecordFilter(q="50% full")) == newest_first(
        lambda r: r.error_message == "Disk 50% FULL"
    )
    assert walk(task_history.RecordFilter(status="failure", since=1005, until=1010)) == (
        newest_first(lambda r: r.status == "failure" and 1005 <= r.trigger_time < 1010)
    )
    counted = task_history.list_records(
        database, task_history.RecordFilter(q="oserror"), count=True
    )
    assert counted.total == 30


def _search_plan(database: Database, q: str) -> str:
    """How the database runs the error-text search (its plan as text)."""
    query = select(TaskRecord.id).where(*task_history.RecordFilter(q=q).conditions(database.engine))
    compiled = query.compile(database.engine, compile_kwargs={"literal_binds": True})
    dialect = database.engine.dialect.name
    explain = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    with database.engine.begin() as conn:
        if dialect == "postgresql":  # a few rows: make the planner show it can use the index
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = conn.exec_driver_sql(explain + str(compiled).replace("%", "%%")).all()
    return " ".join(str(value) for row in rows for value in row)


def test_error_text_search_uses_an_index_and_follows_changes_on_every_database(
    database, monkeypatch
):
    """The search finds text in the error type or message in any case, through the database's
    index (FTS5 trigrams, pg_trgm, FULLTEXT), and follows records replaced and pruned."""
    messages = {
        "a1": ("ValueError", "bad value 12 for key 'order_id'"),
        "a2": ("TimeoutError", "no answer from payments after 30 s"),
        "a3": ("KeyError", "'Order_ID' missing"),
        "a4": (None, None),
        "a5": ("fnhub.errors.RemoteTimeout", "Payments gateway said: Bad Value"),
    }
    rows = [
        TaskResult(
            id=task_id,
            function="s.f",
            status="success" if error is None else "failure",
            trigger_time=1000.0 + i,
            error_type=error,
            error_message=message,
        )
        for i, (task_id, (error, message)) in enumerate(messages.items())
    ]
    records.upsert_records(database, [records.to_row(r) for r in rows])

    def found(q: str) -> list[str]:
        page = task_history.list_records(database, task_history.RecordFilter(q=q), count=True)
        assert page.total == len(page.items)
        return sorted(item["id"] for item in page.items)

    assert found("bad value") == ["a1", "a5"]  # any case
    assert found("payments") == ["a2", "a5"]  # type or message
    assert found("remotetimeout") == ["a5"]
    assert found("order_id") == ["a1", "a3"]
    assert found("bad value 12") == ["a1"]  # the whole text, not any of its words
    assert found("value 13") == []
    assert found("ke") == ["a1", "a3"]  # too short for the index: scanned, same meaning
    for q in ("bad value", "payments", "remotetimeout", "order_id", "bad value 12", "value 13"):
        per_row = task_history.RecordFilter(q=q).per_row_conditions(database.engine)
        assert (per_row is not None) == (database.engine.dialect.name == "mysql"), q
        if per_row is not None:  # MariaDB's walk checks rows as its FULLTEXT index finds them
            with database.engine.connect() as conn:
                walked = conn.execute(select(TaskRecord.id).where(*per_row)).scalars().all()
            assert sorted(walked) == found(q), q
    page = task_history.list_records(database, task_history.RecordFilter(q="bad value"), limit=1)
    assert [item["id"] for item in page.items] == ["a5"] and page.next_cursor  # a full page
    with monkeypatch.context() as patched:  # SQLite's plan for many matches: the same answers
        patched.setattr(record_search, "WALK_ABOVE", 0)
        assert found("bad value") == ["a1", "a5"]
        assert found("bad value 12") == ["a1"]
    plan = _search_plan(database, "payments")
    index = {
        "sqlite": "task_records_search",
        "postgresql": "ix_task_records_error_",
        "mysql": "ix_task_records_error_text",
    }[database.engine.dialect.name]
    assert index in plan, plan

    # a retried task's record is replaced by its later attempt: the index follows
    again = rows[1]
    again.attempt, again.error_type, again.error_message = 2, "ConnectionError", "refused"
    records.upsert_records(database, [records.to_row(again)])
    assert found("payments") == ["a5"]
    assert found("refused") == ["a2"]
    with database.engine.begin() as conn:
        conn.execute(TaskRecord.__table__.delete().where(TaskRecord.id == "a5"))
    assert found("payments") == []
    assert found("bad value") == ["a1"]
