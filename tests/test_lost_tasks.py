"""A task that Redis lost in a failover, while a subscription's batch waited for it, is
enqueued again and runs within seconds (`fnhub.calling.lost`), instead of the message waiting
for the task's expiry and being acknowledged as `expired`.

A Redis primary, its replica and three Sentinels of the test's own (`tests/sentinel_redis.py`),
a real worker, and `Caller.call_many` (the path of a subscription's messages). The loss is
made by hand: the queue entry of a task waited for is deleted (as asynchronous replication
loses what the old primary had not yet passed on), then Sentinel fails over."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aredis
from tests.conftest import REDIS_URL, running_caller
from tests.sentinel_redis import SentinelRedis

from fnhub.calling import lost
from fnhub.calling.caller import Caller
from fnhub.calling.maker import make_task
from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.queue import bundle_envelopes, queue_entry, results_entry
from fnhub.redis_client import sync_redis
from fnhub.tasks import Task, TaskResult, decode_task, encode, result_for

SCRIPT = """
import time
import fnhub

@fnhub.api("slow")
def slow(seconds):
    time.sleep(seconds)
    return "slow"

@fnhub.api("mark")
def mark(path, n):
    with open(path, "a") as out:
        out.write(f"{n}\\n")
    return n
"""


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelRedis]:
    r = SentinelRedis(tmp_path / "redis")
    r.start()
    yield r
    r.close()


@pytest.fixture
def settings(settings: Settings, sentinels: SentinelRedis) -> Settings:
    """The suite's settings on the test's own Redis behind Sentinels; one worker child that
    reads one entry at a time, so the tasks after a slow one wait in the queue."""
    return settings.model_copy(update={"redis_url": sentinels.url, "processes": 1, "prefetch": 1})


@pytest.fixture
async def caller(settings, publish, start_worker) -> AsyncIterator[Caller]:  # type: ignore[no-untyped-def]
    publish({"m": SCRIPT})
    start_worker(processes=1)
    async with running_caller(settings, "lost-tasks-test") as c:
        yield c


def _task(caller: Caller, ref: str, kwargs: dict) -> Task:
    return make_task(caller.settings, caller.active, ref, kwargs, reply_to=caller.reply_stream)


def _delete_entry(settings: Settings, task: Task) -> bytes:
    """Delete the queue entry that holds `task`, as if Redis had never had it; returns the
    task's envelope."""
    client = sync_redis(settings)
    stream = Keys(settings.key_prefix).queue(task.queue)
    try:
        for entry_id, fields in client.xrange(stream):
            envelopes = [fields[b"e"]] if b"e" in fields else list(bundle_envelopes(fields[b"b"]))
            if any(decode_task(bytes(e)).id == task.id for e in envelopes):
                assert len(envelopes) == 1, "the task shares its entry: the test needs it alone"
                assert client.xdel(stream, entry_id) == 1
                return bytes(envelopes[0])
        raise AssertionError(f"task {task.id} is not in {stream}")
    finally:
        client.close()


def _enqueued(caller: Caller, task: Task) -> bool:
    waiter = caller._waiting.get(task.id)
    return isinstance(waiter, tuple) and waiter[0].enqueued_at is not None


async def _wait(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_task_lost_in_a_failover_is_enqueued_again_and_runs(
    caller: Caller, sentinels: SentinelRedis, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    results: dict[str, list[tuple[TaskResult, float]]] = {}

    def on_result(batch: list[Task]):  # type: ignore[no-untyped-def]
        return lambda i, result: results.setdefault(batch[i].id, []).append(
            (result, time.monotonic())
        )

    # the worker's only child busy for a while; behind it, two tasks in the queue
    slow = [_task(caller, "m.slow", {"seconds": 4})]
    running = asyncio.ensure_future(caller.call_many(slow, on_result(slow), wait=120))
    await asyncio.sleep(1.0)  # the child took the slow task
    lost = [_task(caller, "m.mark", {"path": str(marks), "n": 1})]
    kept = [_task(caller, "m.mark", {"path": str(marks), "n": 2})]
    waiting = []
    for batch in (lost, kept):  # one after the other: each in a queue entry of its own
        waiting.append(asyncio.ensure_future(caller.call_many(batch, on_result(batch), 120)))
        await _wait(lambda b=batch: _enqueued(caller, b[0]), 5)

    _delete_entry(caller.settings, lost[0])  # what the old primary had not passed on
    _port, switched = await asyncio.to_thread(sentinels.failover)
    failed_over = time.monotonic()

    await asyncio.wait_for(asyncio.gather(running, *waiting), 30)
    (result, at), *again = results[lost[0].id]
    assert (result.status, result.result) == ("success", 1)
    assert not again
    # handled within seconds of the failover: the slow task's 4 s, the detection (the refresh
    # loop's second), the search
    assert at - failed_over < 12, f"the lost task ran {at - failed_over:.1f}s after the failover"
    assert results[kept[0].id][0][0].result == 2
    assert results[slow[0].id][0][0].result == "slow"
    # only the lost task was enqueued again: the slow and the kept one each ran once
    assert caller.resent == 1
    assert sorted(marks.read_text().split()) == ["1", "2"]
    print(f"failover in {switched:.2f}s; the lost task ran {at - failed_over:.2f}s after it")


async def test_a_task_in_the_delayed_set_is_not_taken_for_lost(
    caller: Caller, settings: Settings, tmp_path: Path
) -> None:
    """A retry waiting for its time (or a task that found its concurrency slots taken) sits in
    the delayed set, not in its queue: the search leaves it alone; once it is gone from there
    too, it is enqueued again and runs."""
    marks = tmp_path / "marks.txt"
    slow = [_task(caller, "m.slow", {"seconds": 3})]
    running = asyncio.ensure_future(caller.call_many(slow, lambda i, r: None, wait=60))
    await asyncio.sleep(1.0)  # the child took the slow task
    parked = [_task(caller, "m.mark", {"path": str(marks), "n": 3})]
    results: list[TaskResult] = []
    waiting = asyncio.ensure_future(
        caller.call_many(parked, lambda i, r: results.append(r), wait=60)
    )
    await _wait(lambda: _enqueued(caller, parked[0]), 5)
    envelope = _delete_entry(settings, parked[0])
    keys = Keys(settings.key_prefix)
    client = sync_redis(settings)
    try:  # as the worker parks a task: its envelope in the hash, due far ahead in the set
        client.hset(keys.delayed_tasks, parked[0].id, envelope)
        client.zadd(keys.delayed, {f"{parked[0].queue}|{parked[0].id}": time.time() + 3600})
        assert await caller.resend_lost(time.monotonic()) == 0
        client.hdel(keys.delayed_tasks, parked[0].id)
        client.zrem(keys.delayed, f"{parked[0].queue}|{parked[0].id}")
    finally:
        client.close()
    assert await caller.resend_lost(time.monotonic()) == 1
    await asyncio.wait_for(asyncio.gather(running, waiting), 30)
    assert [(r.status, r.result) for r in results] == [("success", 3)]
    assert marks.read_text().split() == ["3"]


async def test_the_search_finds_tasks_in_bundles_and_replies_and_skips_malformed_entries(
    tmp_path: Path,
) -> None:
    """`lost.queued` reads single entries and bundles (past one XRANGE page), `lost.replied`
    only replies after the given entry; a malformed entry is skipped, not a failure."""
    prefix = f"fnhub-test-lost-{uuid.uuid4().hex[:8]}"
    stream, replies = f"{prefix}:q:default", f"{prefix}:reply"
    client = aredis.Redis.from_url(REDIS_URL)
    try:
        tasks = [Task(function="m.f") for _ in range(lost.PAGE + 10)]
        # a bundle of two, then one entry each: more entries than one XRANGE page holds
        for group in [tasks[:2], *([t] for t in tasks[2:])]:
            entry = queue_entry([encode(t) for t in group])
            await client.xadd(stream, {entry.field: entry.value})
        await client.xadd(stream, {"b": b"not msgpack"})
        wanted = {tasks[1].id, tasks[-1].id, "nobody"}
        assert await lost.queued(client, stream, wanted) == {tasks[1].id, tasks[-1].id}

        first = await client.xadd(replies, results_entry([encode(result_for(tasks[0], "success"))]))
        await client.xadd(replies, {"rs": b"not msgpack"})
        await client.xadd(replies, results_entry([encode(result_for(tasks[1], "success"))]))
        ids = {tasks[0].id, tasks[1].id}
        assert await lost.replied(client, replies, "0-0", ids) == ids
        assert await lost.replied(client, replies, first.decode(), ids) == {tasks[1].id}
    finally:
        await client.delete(stream, replies)
        await client.aclose()
