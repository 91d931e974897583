"""The worker's finishing step against the real Redis (the machine's, and the embedded Valkey):
one MULTI acknowledges a batch, replies once per caller, appends one records entry and counts,
whatever the size of the results."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from fnhub.embedded_redis import EmbeddedRedis
from fnhub.keys import WORKER_GROUP, Keys
from fnhub.queue import add_enqueue, ensure_groups, iter_results
from fnhub.tasks import Status, Task, result_for
from fnhub.worker.child import Finisher, Retry

# result payloads around every msgpack str header boundary (fixstr, str8, str16, str32): a
# small batch travels inside FINISH's argument, a large one (past FINISH_INLINE_BYTES) beside it
SMALL = [0, 20, 200, 300, 1_000, 4_000]
LARGE = [0, 20, 200, 60_000, 70_000, 300_000]


def _finish_batch(client: redis.Redis, keys: Keys, sizes: list[int]) -> None:
    ensure_groups(client, keys, ["sync"])
    stream = keys.queue("sync")
    tasks = []
    for i, size in enumerate(sizes):
        task = Task(function="s.f", kwargs={"i": i}, reply_to=keys.reply("caller"))
        tasks.append((task, size))
        pipe = client.pipeline()
        add_enqueue(pipe, keys, task)
        pipe.execute()
    entries = client.xreadgroup(WORKER_GROUP, "c1", {stream: ">"}, count=100)[0][1]
    finisher = Finisher(client, keys)
    now = time.time()
    for (entry_id, _fields), (task, size) in zip(entries, tasks, strict=True):
        result = result_for(
            task, Status.SUCCESS, start_time=now, end_time=now + 0.002, result="x" * size
        )
        finisher.add(stream, entry_id.decode(), task, result)
    finisher.flush()

    assert client.xlen(stream) == 0  # acknowledged and deleted
    assert client.xpending(stream, WORKER_GROUP)["pending"] == 0
    replies = client.xrange(keys.reply("caller"))
    assert len(replies) == 1  # one entry for the whole batch
    got = {r.id: r for r in iter_results(replies[0][1])}
    assert [len(got[task.id].result) for task, _ in tasks] == sizes
    assert 0 < client.ttl(keys.reply("caller")) <= 3600
    records = client.xrange(keys.records)
    assert len(records) == 1 and len(list(iter_results(records[0][1]))) == len(sizes)
    stats = client.hgetall(keys.stats)
    assert stats[b"n|sync|success"] == str(len(sizes)).encode()
    assert stats[b"b|sync|0.005"] == str(len(sizes)).encode()
    assert float(stats[b"s|sync"]) == pytest.approx(0.002 * len(sizes), abs=1e-6)
    # per function, in the same call: calls, run time, and queue wait (trigger → start)
    assert stats[b"fn|s.f|success"] == str(len(sizes)).encode()
    assert stats[b"fb|s.f|0.005"] == str(len(sizes)).encode()
    assert float(stats[b"fs|s.f"]) == pytest.approx(0.002 * len(sizes), abs=1e-6)
    waits = {k: int(v) for k, v in stats.items() if k.startswith(b"fw|s.f|")}
    assert sum(waits.values()) == len(sizes)
    waited = sum(now - task.trigger_time for task, _ in tasks)
    assert float(stats[b"fws|s.f"]) == pytest.approx(waited, abs=1e-6)


@pytest.mark.parametrize("sizes", [SMALL, LARGE], ids=["inline", "beside"])
def test_finish_on_the_machines_redis(services, sizes) -> None:
    _finish_batch(services.redis, services.keys, sizes)


def test_finish_on_the_embedded_valkey(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    try:
        client = redis.Redis(unix_socket_path=str(server.socket))
        _finish_batch(client, Keys("embedded"), SMALL)
        _finish_batch(client, Keys("embedded-large"), LARGE)
        client.close()
    finally:
        server.stop()


def test_finish_with_a_retry_goes_through_one_multi(services) -> None:
    """A batch with rarer commands (here a retry) sends them in the same MULTI."""
    client, keys = services.redis, services.keys
    ensure_groups(client, keys, ["sync"])
    stream = keys.queue("sync")
    first, second = Task(function="s.f"), Task(function="s.g", reply_to=keys.reply("c"))
    pipe = client.pipeline()
    add_enqueue(pipe, keys, first)
    add_enqueue(pipe, keys, second)
    pipe.execute()
    entries = client.xreadgroup(WORKER_GROUP, "c1", {stream: ">"}, count=10)[0][1]
    finisher = Finisher(client, keys)
    finisher.add(stream, entries[0][0].decode(), first, Retry(first, time.time() + 60))
    finisher.add(stream, entries[1][0].decode(), second, result_for(second, Status.SUCCESS))
    finisher.flush()
    assert client.xlen(stream) == 0
    assert client.zcard(keys.delayed) == 1  # the retry waits in the delayed set
    assert [r.id for r in iter_results(client.xrange(keys.reply("c"))[0][1])] == [second.id]
