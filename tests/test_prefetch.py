"""A child's prefetched entries go back to the queue when the task ahead of them is slow."""

from __future__ import annotations

import textwrap
import time

import pytest
import redis
from tests.conftest import free_port, wait_for

from fnhub.keys import WORKER_GROUP
from fnhub.queue import add_enqueue
from fnhub.tasks import Task
from fnhub.worker.prefetch import Prefetch

SCRIPT = textwrap.dedent(
    """
    import time

    import fnhub


    @fnhub.api("echo")
    def echo(value=None):
        return value


    @fnhub.api("counts")
    def counts(n):
        fnhub.cache.hincr("runs", str(n))
        return n


    @fnhub.api("slow")
    def slow(seconds: float):
        time.sleep(seconds)
        return seconds
    """
)


def _read(client: redis.Redis, stream: str, consumer: str, n: int) -> list[tuple[str, str, dict]]:
    response = client.xreadgroup(WORKER_GROUP, consumer, {stream: ">"}, count=n)
    return [(stream, raw_id.decode(), fields) for raw_id, fields in response[0][1]]


def _prefetched(r: redis.Redis, stream: str, n: int) -> Prefetch:
    """A prefetch holding n entries that consumer "child" read from a fresh queue stream."""
    r.xgroup_create(stream, WORKER_GROUP, id="0", mkstream=True)
    for i in range(n):
        r.xadd(stream, {"e": f"task {i}".encode()})
    prefetch = Prefetch()
    prefetch.fill(_read(r, stream, "child", n))
    return prefetch


def test_hand_back_requeues_the_unstarted_entries_once(services):
    r, stream = services.redis, services.keys.queue("sync")
    prefetch = _prefetched(r, stream, 5)
    running = prefetch.take()
    assert running is not None and running[2] == {b"e": b"task 0"}

    assert prefetch.hand_back(r, services.keys) == 4
    assert prefetch.take() is None  # the child will not start them any more
    assert prefetch.hand_back(r, services.keys) == 0
    # only the running entry is still the child's; the rest are new entries, read by anyone
    pending = r.xpending_range(stream, WORKER_GROUP, "-", "+", 10, consumername="child")
    assert [p["message_id"].decode() for p in pending] == [running[1]]
    again = _read(r, stream, "other", 10)
    assert [fields for _, _, fields in again] == [{b"e": f"task {i}".encode()} for i in range(1, 5)]
    assert r.xlen(stream) == 5  # originals deleted: the running one and the four new entries


def test_hand_back_keeps_the_entries_when_redis_is_down(services):
    r, stream = services.redis, services.keys.queue("sync")
    prefetch = _prefetched(r, stream, 3)
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        prefetch.hand_back(dead, services.keys)
    # nothing was lost: the child still runs them, in order
    taken = [prefetch.take() for _ in range(3)]
    assert [entry[2] for entry in taken] == [{b"e": f"task {i}".encode()} for i in range(3)]
    assert r.xpending(stream, WORKER_GROUP)["pending"] == 3


def test_fast_tasks_read_behind_a_slow_one_run_elsewhere(client, publish, start_worker, services):
    """Without the hand back, the twenty `counts` tasks would wait for the slow one (4 s)."""
    publish({"demo": SCRIPT})
    keys, r = services.keys, services.redis
    # a backlog of trivial tasks first, so both children grow their read size well past 20
    pipe = r.pipeline(transaction=False)
    for i in range(2000):
        add_enqueue(pipe, keys, Task(function="demo.echo", kwargs={"value": i}))
    pipe.execute()
    start_worker(processes=2)
    wait_for(lambda: r.xlen(keys.queue("sync")) == 0, timeout=60)
    time.sleep(0.3)  # both children back in their blocking read

    slow = Task(function="demo.slow", kwargs={"seconds": 4.0}, reply_to=client.reply_stream)
    fast = [
        Task(function="demo.counts", kwargs={"n": i}, reply_to=client.reply_stream)
        for i in range(20)
    ]
    pipe = r.pipeline(transaction=True)  # one read takes them all, the slow one first
    for task in [slow, *fast]:
        add_enqueue(pipe, keys, task)
    pipe.execute()

    results = [client.wait(task.id, 10) for task in fast]
    assert [res.status for res in results] == ["success"] * 20
    slow_result = client.wait(slow.id, 10)
    assert slow_result.status == "success"
    assert max(res.end_time for res in results) < slow_result.start_time + 2.0
    added = r.xinfo_stream(keys.queue("sync"))["entries-added"]
    assert added > 2000 + 21, "nothing handed back: no task was read behind the slow one"
    runs = r.hgetall(f"{keys.prefix}:cache:demo:runs")
    assert runs == {str(i).encode(): b"1" for i in range(20)}  # each ran exactly once


def test_hand_back_passes_a_malformed_entry_on_unchanged(services):
    """Whoever reads it next discards it with a clear log line, as any child would have."""
    r, stream = services.redis, services.keys.queue("sync")
    prefetch = _prefetched(r, stream, 1)
    r.xadd(stream, {"other": b"not an envelope"})
    r.xadd(stream, {"b": b"\xc1 not a bundle"})
    prefetch.fill(_read(r, stream, "child", 2))
    assert prefetch.hand_back(r, services.keys) == 3
    again = _read(r, stream, "other", 10)
    assert [fields for _, _, fields in again] == [
        {b"e": b"task 0"},
        {b"other": b"not an envelope"},
        {b"b": b"\xc1 not a bundle"},
    ]


def test_the_slot_names_a_running_task_only_once_described_and_never_a_torn_one():
    """What the supervisor's heartbeat reads of a child's task (`Slot.described`): nothing
    until the watchdog's `describe`, nothing once another task started, nothing torn."""
    from fnhub.worker.child import Slot

    slot = Slot.create()
    first = Task(function="demo.slow", queue="sync")
    slot.set("t:q:sync", "1-0", 0, time.time() + 30, task=first)
    assert slot.described() is None  # a task that started a moment ago: not named yet
    slot.describe()
    since = slot.running_since()
    assert slot.described() == (since, first.id, "demo.slow")
    second = Task(function="demo.echo", queue="sync")
    slot.set("t:q:sync", "2-0", 0, time.time() + 30, task=second)
    assert slot.described() is None  # still the first task's words: refused
    slot.describe()
    assert slot.described() == (slot.running_since(), second.id, "demo.echo")
    # a read that caught the next write halfway: new start, old end
    stamp = repr(slot.running_since()).encode()
    slot.what.value = stamp + b" " + second.id.encode() + b" demo.echo 123.5"
    assert slot.described() is None
    slot.clear()
    assert slot.described() is None  # between tasks
