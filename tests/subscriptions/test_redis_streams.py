"""Redis Streams subscriptions end to end: no loss, no double success, restart resume."""

from __future__ import annotations

import json
import time

import pytest
from tests.conftest import REDIS_URL, wait_for

from fnhub.connectors.base import stable_client_id


def _subscription(cluster_stream: str, window: int = 200) -> dict:
    return {
        "connector": "local",
        "topics": [cluster_stream],
        "function": "handlers.count",
        "window": window,
        "options": {"kind": "stream", "start": "0"},
    }


def _publish(r, stream: str, n: int, start: int = 0) -> None:
    for base in range(start, start + n, 1000):
        pipe = r.pipeline(transaction=False)
        for i in range(base, min(base + 1000, start + n)):
            pipe.xadd(stream, {"data": f"m{i}"})
        pipe.execute()


@pytest.mark.timeout(120)
def test_burst_into_slow_handler_processes_every_message_once(make_cluster):
    stream = f"in-{time.time_ns()}"
    cluster = make_cluster(
        {"local": {"type": "redis", "settings": {"url": REDIS_URL}}},
        {"burst": _subscription(stream)},
    )
    cluster.redis.delete(stream)
    cluster.set_delay(0.0005)
    cluster.start_worker(processes=2)
    cluster.start_server()
    n = 20_000
    started = time.monotonic()
    _publish(cluster.redis, stream, n)
    wait_for(lambda: len(cluster.seen()) == n, timeout=100, interval=0.5)
    elapsed = time.monotonic() - started
    seen = cluster.seen()
    assert set(seen.values()) == {1}, "a message succeeded twice"
    assert seen.keys() == {f"m{i}" for i in range(n)}
    [status] = cluster.status("burst")
    assert status["source"]["max_in_flight"] <= 200
    wait_for(lambda: cluster.redis.xpending(stream, "fnhub-burst")["pending"] == 0, timeout=10)
    print(f"redis streams: {n} messages in {elapsed:.1f}s = {n / elapsed:.0f}/s")
    cluster.redis.delete(stream)


@pytest.mark.timeout(120)
def test_server_killed_mid_burst_loses_nothing(make_cluster):
    stream = f"in-{time.time_ns()}"
    cluster = make_cluster(
        {"local": {"type": "redis", "settings": {"url": REDIS_URL}}},
        {"resume": _subscription(stream, window=50)},
    )
    cluster.redis.delete(stream)
    cluster.set_delay(0.001)
    cluster.start_worker(processes=2)
    cluster.start_server()
    n = 5000
    _publish(cluster.redis, stream, n)
    wait_for(lambda: len(cluster.seen()) > 500, timeout=60, interval=0.2)
    cluster.kill_server()
    partial = len(cluster.seen())
    assert partial < n
    cluster.start_server()
    wait_for(lambda: len(cluster.seen()) == n, timeout=90, interval=0.5)
    assert cluster.seen().keys() == {f"m{i}" for i in range(n)}
    cluster.redis.delete(stream)


@pytest.mark.timeout(60)
def test_the_function_sees_the_entry_id_as_message_id(make_cluster):
    """`fnhub.context.meta["message_id"]` is the stream entry id: a key to make a function
    idempotent across the redeliveries that at-least-once allows."""
    stream = f"in-{time.time_ns()}"
    subscription = {**_subscription(stream), "function": "handlers.meta"}
    cluster = make_cluster(
        {"local": {"type": "redis", "settings": {"url": REDIS_URL}}}, {"ids": subscription}
    )
    cluster.start_worker(processes=1)
    cluster.start_server()
    ids = {f"m{i}": cluster.redis.xadd(stream, {"data": f"m{i}"}).decode() for i in range(3)}
    key = f"{cluster.prefix}:cache:ctl:metas"
    wait_for(lambda: cluster.redis.hlen(key) == 3, timeout=30, interval=0.2)
    metas = {k.decode(): json.loads(v) for k, v in cluster.redis.hgetall(key).items()}
    for message, entry_id in ids.items():
        assert metas[message]["message_id"] == entry_id
        assert metas[message]["topic"] == stream
    cluster.redis.delete(stream)


def _pending_of(r, stream: str, group: str, consumer: str) -> int:
    consumers = r.xinfo_consumers(stream, group)
    return sum(c["pending"] for c in consumers if c["name"].decode() == consumer)


@pytest.mark.timeout(120)
def test_killed_server_in_flight_entries_handled_within_seconds(make_cluster):
    """`multiple` mode: the entries a SIGKILLed server had in flight are claimed by the live
    server once the dead one's liveness key lapses, seconds after the kill, not after
    `claim_idle_ms` (60 s)."""
    stream = f"in-{time.time_ns()}"
    subscription = {**_subscription(stream, window=5), "mode": "multiple"}
    cluster = make_cluster(
        {"local": {"type": "redis", "settings": {"url": REDIS_URL}}}, {"reclaim": subscription}
    )
    group, n1 = "fnhub-reclaim", stable_client_id("local", "reclaim", "n1")
    cluster.set_delay(2.0)
    cluster.start_worker(processes=2)
    cluster.start_server("n1")
    cluster.start_server("n2")
    wait_for(lambda: cluster.connected("reclaim") == 2, timeout=30, interval=0.2)
    n = 10
    _publish(cluster.redis, stream, n)
    wait_for(lambda: _pending_of(cluster.redis, stream, group, n1) > 0, timeout=10, interval=0.05)
    cluster.kill_server("n1")
    killed = time.monotonic()
    in_flight = _pending_of(cluster.redis, stream, group, n1)
    cluster.set_delay(0.0)
    wait_for(lambda: _pending_of(cluster.redis, stream, group, n1) == 0, timeout=10, interval=0.05)
    claimed = time.monotonic() - killed
    # n1 cannot ack any more: an empty pending list means n2 handled and acked them all
    wait_for(lambda: cluster.redis.xpending(stream, group)["pending"] == 0, timeout=10)
    handled = time.monotonic() - killed
    assert handled < 10
    assert cluster.seen().keys() == {f"m{i}" for i in range(n)}
    print(
        f"{in_flight} in flight on the killed server: claimed after {claimed:.1f}s, "
        f"handled after {handled:.1f}s"
    )
    cluster.redis.delete(stream)
