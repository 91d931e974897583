"""Per-function counts per minute: written by the worker's finishing call (FINISH and the
MULTI path), read back by the console's hour window (settled minutes once, the window
sliding), percentiles from the run-time buckets."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import redis.asyncio as aredis
from tests.conftest import REDIS_URL

from fnhub.config import Settings
from fnhub.keys import WORKER_GROUP, Keys
from fnhub.minute_stats import MINUTE_TTL_SECONDS, HourWindow, percentile, top
from fnhub.queue import ResultBatch, add_enqueue, add_result, ensure_groups
from fnhub.tasks import Status, Task, result_for
from fnhub.worker.child import Finisher


def _result(function: str, status: Status, end: float, run: float):  # type: ignore[no-untyped-def]
    task = Task(function=function)
    return task, result_for(task, status, start_time=end - run, end_time=end)


def test_finish_counts_each_function_in_the_minute_its_tasks_ended(settings: Settings) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = Keys(settings.key_prefix)
    ensure_groups(client, keys, ["sync"])
    stream = keys.queue("sync")
    minute = int(time.time() // 60) - 3
    outcomes = [
        ("s.a", Status.SUCCESS, 0.0002),
        ("s.a", Status.SUCCESS, 0.0002),
        ("s.a", Status.FAILURE, 0.003),
        ("s.b", Status.SUCCESS, 0.7),
    ]
    for function, _status, _run in outcomes:
        pipe = client.pipeline()
        add_enqueue(pipe, keys, Task(function=function))
        pipe.execute()
    entries = client.xreadgroup(WORKER_GROUP, "c1", {stream: ">"}, count=10)[0][1]
    finisher = Finisher(client, keys)
    for (entry_id, _fields), (function, status, run) in zip(entries, outcomes, strict=True):
        task, result = _result(function, status, minute * 60 + 30, run)
        finisher.add(stream, entry_id.decode(), task, result)
    finisher.flush()
    stats = client.hgetall(keys.stats_minute(minute))
    assert stats == {
        b"n|s.a|success": b"2",
        b"n|s.a|failure": b"1",
        b"b|s.a|0.25": b"2",
        b"b|s.a|5": b"1",
        b"n|s.b|success": b"1",
        b"b|s.b|1000": b"1",
    }
    assert MINUTE_TTL_SECONDS - 5 < client.ttl(keys.stats_minute(minute)) <= MINUTE_TTL_SECONDS

    # the MULTI path (a dead letter, a timeout released by the supervisor) counts the same way
    task, result = _result("s.b", Status.TIMEOUT, minute * 60 + 59, 2.0)
    pipe = client.pipeline()
    add_result(pipe, keys, task, result)
    pipe.execute()
    assert client.hget(keys.stats_minute(minute), "n|s.b|timeout") == b"1"
    assert client.hget(keys.stats_minute(minute), "b|s.b|2500") == b"1"
    client.close()


def _write(client: redis.Redis, keys: Keys, rows: list[tuple[str, Status, float, float]]) -> None:
    batch = ResultBatch()
    pipe = client.pipeline()
    for function, status, end, run in rows:
        task, result = _result(function, status, end, run)
        task.record = False
        add_result(pipe, keys, task, result, batch)
    batch.flush(pipe, keys)
    pipe.execute()


def test_the_hour_window_reads_settled_minutes_once_and_slides(settings: Settings) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = Keys(settings.key_prefix)
    now = (int(time.time() // 60)) * 60 + 30.0  # half a minute into the current minute
    current = int(now // 60)
    rows = []
    for back in range(0, 70, 1):  # one task of s.a each minute, a failure of s.b every 10th
        rows.append(("s.a", Status.SUCCESS, (current - back) * 60 + 1, 0.004))
        if back % 10 == 0:
            rows.append(("s.b", Status.FAILURE, (current - back) * 60 + 2, 0.04))
    _write(client, keys, rows)

    async def scenario() -> None:
        async_client = aredis.Redis.from_url(REDIS_URL)
        window = HourWindow(keys)
        await window.refresh(async_client, now)
        calls, failures = window.series()
        assert len(calls) == 60 and calls[-1] == 2 and calls[0] == 1  # oldest first
        assert sum(calls) == 60 + 6 and sum(failures) == 6
        assert window.calls_and_failures() == {"s.a": (60, 0), "s.b": (6, 6)}
        assert window.minutes_axis() == {"start": (current - 59) * 60, "step": 60, "count": 60}
        assert set(window.settled) == set(range(current - 59, current))  # all but the current

        # a task lands in the current minute: only that minute is read again
        _write(client, keys, [("s.b", Status.SUCCESS, now + 1, 0.04)])
        await window.refresh(async_client, now + 2)
        assert window.calls_and_failures()["s.b"] == (7, 6)
        summary = window.function("s.b").summary()
        assert summary["statuses"] == {"failure": 6, "success": 1}
        assert 25 < summary["p50_ms"] <= 50

        # 30 minutes later: the 30 oldest minutes left the window, the new ones are empty
        await window.refresh(async_client, now + 30 * 60)
        assert window.calls_and_failures() == {"s.a": (30, 0), "s.b": (4, 3)}
        assert sum(window.series("s.a")[0]) == 30
        await window.refresh(async_client, now + 120 * 60)
        assert window.calls_and_failures() == {} and window.functions() == []
        await async_client.aclose()

    asyncio.run(scenario())
    client.close()


def test_percentiles_interpolate_inside_a_bucket_and_top_picks_busy_and_failing() -> None:
    assert percentile({}, 0.5) is None
    # 100 tasks in (1, 2.5] ms: the median is half way in
    assert percentile({4: 100}, 0.5) == pytest.approx(1.75)
    assert percentile({0: 50, 19: 50}, 0.99) == 300000.0  # "+Inf": at least the last bound
    totals = {"a": (100, 0), "b": (50, 1), "c": (10, 9), "d": (5, 0)}
    assert top(totals, 1) == ["a", "c"]
    assert top(totals, 2) == ["a", "b", "c"]
