"""`Caller.call_many`, the server's batch path (subscriptions): every call of a batch gets
exactly one outcome — its result, an EXPIRED `NoResult` after `wait`, or a place in `unsent`
when the enqueue failed — against the machine's Redis and a real worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from tests.conftest import running_caller

from fnhub.calling.caller import Caller
from fnhub.calling.maker import make_task
from fnhub.tasks import Task, TaskResult

SCRIPT = """
import time
import fnhub

@fnhub.api("echo")
def echo(n):
    if n % 3 == 0:
        raise ValueError(f"no multiples of three: {n}")
    return n

@fnhub.api("slow")
def slow(seconds):
    time.sleep(seconds)
    return "late"
"""


@pytest.fixture
async def caller(settings, publish, start_worker) -> AsyncIterator[Caller]:  # type: ignore[no-untyped-def]
    publish({"m": SCRIPT})
    start_worker(processes=2)
    async with running_caller(settings, "call-many-test") as c:
        yield c


def _tasks(caller: Caller, ref: str, kwargs: list[dict]) -> list[Task]:
    return [
        make_task(caller.settings, caller.active, ref, kw, reply_to=caller.reply_stream)
        for kw in kwargs
    ]


def _collect() -> tuple[dict[int, list[TaskResult]], Callable[[int, TaskResult], None]]:
    seen: dict[int, list[TaskResult]] = {}
    return seen, lambda i, result: seen.setdefault(i, []).append(result)


async def test_each_call_gets_its_own_result_once(caller: Caller) -> None:
    n = 300  # more than one ENQUEUE_MANY chunk
    tasks = _tasks(caller, "m.echo", [{"n": i} for i in range(n)])
    seen, on_result = _collect()
    batch = await caller.call_many(tasks, on_result, wait=30)
    assert batch.unsent == [] and batch.error is None
    assert sorted(seen) == list(range(n))
    for i, results in seen.items():
        assert len(results) == 1
        (result,) = results
        assert result.id == tasks[i].id
        if i % 3 == 0:
            assert result.status == "failure"
            assert result.error_message == f"no multiples of three: {i}"
        else:
            assert (result.status, result.result) == ("success", i)
    assert not caller._waiting  # nothing left behind


async def test_calls_without_result_in_time_expire_and_late_results_are_ignored(
    caller: Caller,
) -> None:
    tasks = _tasks(caller, "m.slow", [{"seconds": 2.0}])
    seen, on_result = _collect()
    batch = await caller.call_many(tasks, on_result, wait=0.5)
    assert batch.unsent == []
    (expired,) = seen[0]
    assert (expired.id, expired.status, expired.error_type) == (tasks[0].id, "expired", "NoResult")
    assert "within 0.5s" in (expired.error_message or "")
    assert not caller._waiting
    # the task still ends, and its reply arrives to nobody
    field = f"n|{tasks[0].queue}|success"
    for _ in range(100):
        if await caller.redis.hget(caller.keys.stats, field):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the slow task never finished")
    await asyncio.sleep(0.2)  # time for the reply reader to see the late reply
    assert len(seen[0]) == 1


async def test_a_failed_enqueue_lists_every_call_as_unsent(caller: Caller) -> None:
    # a queue stream key that holds a string: XADD fails with WRONGTYPE inside ENQUEUE_MANY
    await caller.redis.set(caller.keys.queue("broken"), "not a stream")
    caller.queue_workers["broken"] = 1  # pretend someone reads it, to get past the 503 check
    tasks = _tasks(caller, "m.echo", [{"n": 1}, {"n": 2}])
    for task in tasks:
        task.queue = "broken"
    seen, on_result = _collect()
    batch = await caller.call_many(tasks, on_result, wait=5)
    assert sorted(batch.unsent) == [0, 1]
    assert "WRONGTYPE" in str(batch.error)
    assert seen == {}
    assert not caller._waiting
