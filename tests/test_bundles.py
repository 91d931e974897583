"""Bundle entries: many tasks in one queue entry, each run and acknowledged exactly as if it had
an entry of its own — through crashes, timeouts, hand backs and shutdowns — against the
machine's Redis and real worker processes."""

from __future__ import annotations

import os
import signal
import textwrap
import time

import msgspec
import pytest
import redis
from tests.conftest import CRASH_ONCE, wait_for

from fnhub import status
from fnhub.bootstrap import Services
from fnhub.calling.queue_client import QueueClient
from fnhub.keys import WORKER_GROUP, Keys
from fnhub.queue import (
    ENQUEUE_MANY,
    QUEUE_LENGTHS,
    add_bundle,
    bundle_envelopes,
    bundle_field,
    enqueue_many_args,
    iter_results,
    release_consumer,
)
from fnhub.tasks import Status, Task, TaskResult, decode_task, encode, result_for
from fnhub.worker.child import Finisher, ReadSize, Slot
from fnhub.worker.prefetch import Entry, Prefetch

SCRIPT = (
    textwrap.dedent(
        """
    import os
    import time

    import fnhub


    @fnhub.api("counts")
    def counts(n, seconds=0.0):
        fnhub.cache.hincr("runs", str(n))
        time.sleep(seconds)
        return n


    @fnhub.api("spins", timeout=1)
    def spins():
        while True:
            pass
    """
    )
    + CRASH_ONCE
)


def _counts(client: QueueClient, ns: range, seconds: float = 0.0) -> list[Task]:
    return [
        Task(function="b.counts", kwargs={"n": n, "seconds": seconds}, reply_to=client.reply_stream)
        for n in ns
    ]


def _enqueue(services: Services, tasks: list[Task], entries: int = 1) -> str:
    """Enqueue `tasks` as the server does (ENQUEUE_MANY); returns the queue stream."""
    stream = services.keys.queue("sync")
    args = enqueue_many_args([encode(t) for t in tasks], entries)
    services.redis.eval(ENQUEUE_MANY, 2, stream, services.keys.bundled, *args)
    return stream


def _lengths(r: redis.Redis, keys: Keys, *queues: str) -> list[int]:
    streams = [keys.queue(q) for q in queues]
    return r.eval(QUEUE_LENGTHS, len(streams), *streams, keys.bundled)


def _runs(services: Services) -> dict[int, int]:
    raw = services.redis.hgetall(f"{services.keys.prefix}:cache:b:runs")
    return {int(k): int(v) for k, v in raw.items()}


def _assert_clean(services: Services) -> None:
    """Nothing left behind: no entry, no progress field, no count of bundled tasks."""
    r, keys = services.redis, services.keys
    wait_for(lambda: r.xlen(keys.queue("sync")) == 0, timeout=20)
    assert r.hlen(keys.bundles) == 0
    assert int(r.hget(keys.bundled, keys.queue("sync")) or 0) == 0
    assert _lengths(r, keys, "sync") == [0]


def _read(r: redis.Redis, stream: str, consumer: str, n: int = 100) -> list[Entry]:
    response = r.xreadgroup(WORKER_GROUP, consumer, {stream: ">"}, count=n)
    return [(stream, raw_id.decode(), fields) for raw_id, fields in response[0][1]]


@pytest.fixture
def worker(publish, start_worker):
    publish({"b": SCRIPT})
    return start_worker(processes=2)


# -- the entry format and the queue's length ------------------------------------------------


def test_tasks_are_split_into_nearly_equal_entries():
    envelopes = [msgspec.msgpack.encode(f"t{i}") for i in range(5)]
    args = enqueue_many_args(envelopes, 2)
    assert args[0] == "3"  # 5 tasks in 2 entries: 3 more tasks than entries
    assert args[1] == "b" and [bytes(e) for e in bundle_envelopes(args[2])] == envelopes[:2]
    assert args[3] == "b" and [bytes(e) for e in bundle_envelopes(args[4])] == envelopes[2:]
    # more entries wanted than tasks: one plain entry each
    assert enqueue_many_args(envelopes[:2], 8) == ["0", "e", envelopes[0], "e", envelopes[1]]
    assert enqueue_many_args(envelopes[:1], 0) == ["0", "e", envelopes[0]]


def test_queue_length_counts_tasks_and_heals_when_the_queue_is_emptied(services):
    r, keys = services.redis, services.keys
    tasks = [Task(function="b.counts", kwargs={"n": n}) for n in range(10)]
    stream = _enqueue(services, tasks[:7], entries=2)
    pipe = r.pipeline()
    add_bundle(pipe, keys, stream, [encode(t) for t in tasks[7:9]])
    add_bundle(pipe, keys, stream, [encode(tasks[9])])
    pipe.execute()
    assert r.xlen(stream) == 4
    assert _lengths(r, keys, "sync", "empty") == [10, 0]
    r.delete(stream)  # e.g. an operator's DEL: the count of bundled tasks must not outlive it
    assert _lengths(r, keys, "sync") == [0]
    assert r.hget(keys.bundled, stream) is None


def test_status_counts_tasks_and_the_entries_workers_hold(services):
    r, keys = services.redis, services.keys
    r.xgroup_create(keys.queue("sync"), WORKER_GROUP, id="0", mkstream=True)
    stream = _enqueue(services, [Task(function="b.counts", kwargs={"n": n}) for n in range(5)])
    _enqueue(services, [Task(function="b.counts", kwargs={"n": n}) for n in range(5, 7)], 2)
    _read(r, stream, "child", 1)  # a worker holds the bundle
    rows = status.gather(r, keys, services.db, ["sync", "async"])["queues"]
    assert rows == [
        {"queue": "sync", "tasks": 7, "held": 1},
        {"queue": "async", "tasks": 0, "held": 0},
    ]


# -- the child's side, step by step -----------------------------------------------------------


def test_the_slot_names_the_running_task_of_a_bundle():
    slot = Slot.create()
    assert slot.running() is None
    slot.set("q:a", "1-0", 0, time.time() + 5)
    slot.clear()
    slot.set("q:a", "1-0", 7, time.time() + 5)  # the next task of the same bundle
    assert slot.running() == ("q:a", "1-0", 7)
    slot.clear()
    assert slot.running() is None
    slot.set("q:b", "1-0", 2, time.time() + 5)  # entry ids are unique per stream only
    assert slot.running() == ("q:b", "1-0", 2)


def test_progress_is_recorded_until_the_last_task_acknowledges_the_entry(services):
    r, keys = services.redis, services.keys
    tasks = [Task(function="b.counts", kwargs={"n": n}, reply_to=keys.reply("c")) for n in range(4)]
    r.xgroup_create(keys.queue("sync"), WORKER_GROUP, id="0", mkstream=True)
    stream = _enqueue(services, tasks)
    prefetch = Prefetch()
    prefetch.fill(_read(r, stream, "child"))
    finisher = Finisher(r, keys)

    def finish_next() -> None:
        item = prefetch.take()
        assert item is not None
        task = decode_task(item[2])
        last = prefetch.settle(item)
        finisher.add(*item[:2], task, _success(task), bundle=item[3], index=item[4], last=last)

    for _ in range(3):
        finish_next()
    finisher.flush()
    (entry_id,) = _pending_ids(r, stream, "child")  # still pending: one task to go
    assert r.hget(keys.bundles, bundle_field("done", stream, entry_id)) == b"3"
    replied = [res.id for res in _replies(r, keys.reply("c"))]
    assert replied == [t.id for t in tasks[:3]]  # results went out before the entry is done
    finish_next()
    finisher.flush()
    assert _pending_ids(r, stream, "child") == []
    assert [res.id for res in _replies(r, keys.reply("c"))] == [t.id for t in tasks]
    _assert_clean(services)


def test_hand_back_of_a_started_bundle_keeps_the_started_part(services):
    r, keys = services.redis, services.keys
    tasks = [Task(function="b.counts", kwargs={"n": n}) for n in range(5)]
    r.xgroup_create(keys.queue("sync"), WORKER_GROUP, id="0", mkstream=True)
    stream = _enqueue(services, tasks)
    prefetch = Prefetch()
    prefetch.fill(_read(r, stream, "child"))
    first, running = prefetch.take(), prefetch.take()
    assert first is not None and running is not None
    assert prefetch.settle(first) is False

    assert prefetch.hand_back(r, keys) == 3
    assert prefetch.take() is None
    (entry_id,) = _pending_ids(r, stream, "child")
    assert r.hget(keys.bundles, bundle_field("end", stream, entry_id)) == b"2"
    assert _lengths(r, keys, "sync") == [5]  # 2 still held here + 3 handed back, no more
    (handed,) = _read(r, stream, "other")
    assert [decode_task(e).kwargs["n"] for e in bundle_envelopes(handed[2][b"b"])] == [2, 3, 4]
    assert prefetch.settle(running) is True  # the child's last kept task completes its entry


def test_hand_back_of_an_unstarted_bundle_moves_the_whole_entry(services):
    r, keys = services.redis, services.keys
    r.xgroup_create(keys.queue("sync"), WORKER_GROUP, id="0", mkstream=True)
    slow = Task(function="b.counts", kwargs={"n": 0})
    stream = _enqueue(services, [slow])
    _enqueue(services, [Task(function="b.counts", kwargs={"n": n}) for n in range(1, 4)])
    prefetch = Prefetch()
    prefetch.fill(_read(r, stream, "child"))
    assert prefetch.take() is not None  # the single task runs; the bundle waits behind it
    assert prefetch.hand_back(r, keys) == 3
    assert len(_pending_ids(r, stream, "child")) == 1
    assert r.hlen(keys.bundles) == 0  # nothing of the bundle stayed here
    assert _lengths(r, keys, "sync") == [4]


@pytest.mark.parametrize(
    ("running_entry", "outcome", "expected"),
    [
        ("this", "crash", {2: 1, 3: 2, 4: 1}),  # the running task's attempt counts
        ("this", "release", {2: 1, 3: 1, 4: 1}),
        (None, "crash", {2: 2, 3: 2, 4: 2}),  # unknown: each may have been running
    ],
)
def test_release_gives_back_only_what_did_not_finish(services, running_entry, outcome, expected):
    r, keys = services.redis, services.keys
    r.xgroup_create(keys.queue("sync"), WORKER_GROUP, id="0", mkstream=True)
    stream = _enqueue(services, [Task(function="b.counts", kwargs={"n": n}) for n in range(5)])
    (entry,) = _read(r, stream, "dead-child")
    r.hset(keys.bundles, bundle_field("done", stream, entry[1]), 2)  # tasks 0 and 1 finished

    finals = release_consumer(
        r,
        keys,
        stream,
        "dead-child",
        running_entry=entry[1] if running_entry == "this" else running_entry,
        running_index=3,
        running_outcome=outcome,
        claimer="test",
    )
    assert finals == []
    requeued = {
        decode_task(f[b"e"]).kwargs["n"]: decode_task(f[b"e"]).attempt
        for _, _, f in _read(r, stream, "next")
    }
    assert requeued == expected
    assert r.hlen(keys.bundles) == 0
    assert _lengths(r, keys, "sync") == [3]


def test_release_of_the_timed_out_task_of_a_bundle_gives_it_its_result(services):
    r, keys = services.redis, services.keys
    r.xgroup_create(keys.queue("sync"), WORKER_GROUP, id="0", mkstream=True)
    tasks = [Task(function="b.counts", kwargs={"n": n}, timeout=1) for n in range(3)]
    stream = _enqueue(services, tasks)
    (entry,) = _read(r, stream, "dead-child")
    finals = release_consumer(
        r,
        keys,
        stream,
        "dead-child",
        running_entry=entry[1],
        running_index=1,
        running_outcome="timeout",
        claimer="test",
    )
    assert [(f.id, f.status) for f in finals] == [(tasks[1].id, "timeout")]
    again = [decode_task(f[b"e"]).id for _, _, f in _read(r, stream, "next")]
    assert again == [tasks[0].id, tasks[2].id]


def test_a_malformed_bundle_is_discarded_and_the_worker_goes_on(client, worker, services):
    stream = services.keys.queue("sync")
    services.redis.xadd(stream, {"b": b"\xc1 not msgpack"})
    services.redis.xadd(stream, {"b": b"\x90"})  # an empty bundle
    _enqueue(services, _counts(client, range(3)))
    wait_for(lambda: _runs(services) == {0: 1, 1: 1, 2: 1}, timeout=20)
    _assert_clean(services)


# -- end to end, with real worker processes ---------------------------------------------------


def test_every_task_of_many_bundles_runs_once(client, worker, services):
    tasks = _counts(client, range(1000))
    for start in range(0, 1000, 200):
        _enqueue(services, tasks[start : start + 200], entries=2)
    results = [client.wait(t.id, 30) for t in tasks]
    assert [r.status if r else None for r in results] == ["success"] * 1000
    assert [r.result for r in results] == list(range(1000))
    assert _runs(services) == {n: 1 for n in range(1000)}
    _assert_clean(services)


def test_a_crash_mid_bundle_repeats_no_finished_task(client, worker, services):
    r, keys = services.redis, services.keys
    before, after = _counts(client, range(10)), _counts(client, range(10, 20))
    crash = Task(function="b.crash_once", reply_to=client.reply_stream)
    stream = _enqueue(services, [*before, crash, *after])
    # the results finished before the stuck task go out while it runs, with the bundle's progress
    assert [client.wait(t.id, 10).status for t in before] == ["success"] * 10
    pid = wait_for(lambda: r.get(f"{keys.prefix}:cache:b:pid"))
    entry_ids = [e[0].decode() for e in r.xrange(stream)]
    assert len(entry_ids) == 1
    assert r.hget(keys.bundles, bundle_field("done", stream, entry_ids[0])) == b"10"

    os.kill(int(pid), signal.SIGKILL)
    result = client.wait(crash.id, 30)
    assert result is not None and result.status == "success"
    assert result.result == {"attempt": 2}
    assert [client.wait(t.id, 30).status for t in after] == ["success"] * 10
    assert _runs(services) == {n: 1 for n in range(20)}
    _assert_clean(services)


def test_a_timeout_mid_bundle_ends_that_task_only(client, worker, services):
    before, after = _counts(client, range(5)), _counts(client, range(5, 10))
    spins = Task(function="b.spins", timeout=5.0, reply_to=client.reply_stream)
    started = time.monotonic()
    _enqueue(services, [*before, spins, *after])
    # the tasks behind the spinning one are handed back and run elsewhere meanwhile, well
    # before its timeout (the margin is for a loaded machine: the hand-back itself is ~0.1 s)
    assert [client.wait(t.id, 10).status for t in after] == ["success"] * 5
    assert time.monotonic() - started < 4.0
    result = client.wait(spins.id, 20)
    assert result is not None and result.status == "timeout"
    assert [client.wait(t.id, 10).status for t in before] == ["success"] * 5
    assert _runs(services) == {n: 1 for n in range(10)}
    _assert_clean(services)


def test_shutdown_hands_the_unfinished_rest_of_a_bundle_to_the_next_worker(
    client, publish, start_worker, services
):
    publish({"b": SCRIPT})
    first = start_worker(processes=1)
    tasks = _counts(client, range(8), seconds=0.3)
    _enqueue(services, tasks)
    assert client.wait(tasks[0].id, 10).status == "success"
    first.stop()
    start_worker(processes=2)
    results = [client.wait(t.id, 20) for t in tasks[1:]]
    assert [r.status if r else None for r in results] == ["success"] * 7
    assert _runs(services) == {n: 1 for n in range(8)}
    _assert_clean(services)


def _pending_ids(r: redis.Redis, stream: str, consumer: str) -> list[str]:
    pending = r.xpending_range(stream, WORKER_GROUP, "-", "+", 100, consumername=consumer)
    return [p["message_id"].decode() for p in pending]


def _replies(r: redis.Redis, stream: str) -> list[TaskResult]:
    return [res for _, fields in r.xrange(stream) for res in iter_results(fields)]


def _success(task: Task) -> TaskResult:
    now = time.time()
    return result_for(task, Status.SUCCESS, start_time=now, end_time=now, result=None)


def test_read_size_counts_tasks_so_a_child_takes_a_share_of_the_bundles() -> None:
    """XREADGROUP counts entries: a child reading bundles of 60 asks for about `prefetch` tasks'
    worth of them (2 entries), not `prefetch` entries (all of a burst's bundles)."""
    size = ReadSize(128)
    for _ in range(10):  # plain entries read quickly: up to 128 at once
        size.update(size.count, size.count, 0.001)
    assert size.count == 128
    size.update(2, 120, 0.001)  # then bundles of 60
    assert size.count == 2
    for _ in range(5):
        size.update(size.count, 60 * size.count, 0.001)
    assert size.count == 2
    size.update(1, 60, 0.2)  # slow: fewer tasks, and never less than one entry
    assert (size.size, size.count) == (64, 1)
    size.update(1, 1, 0.001)  # plain entries again
    assert size.count == 64
