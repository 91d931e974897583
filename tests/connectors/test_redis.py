"""Redis streams and pub/sub sources and publishers against real redis-server instances."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
import redis.asyncio as aredis

from fnhub.connectors import (
    ConnectorError,
    create_source,
    each,
    get_async_publisher,
    get_publisher,
)
from fnhub.connectors.pool import close_async_publishers, close_publisher
from fnhub.connectors.redis.liveness import ALIVE_TTL_MS, alive_key

from .conftest import SHARED_REDIS_URL, Recorder, wait_for

SETTINGS = {"url": SHARED_REDIS_URL}


async def _xadd_burst(client: aredis.Redis, key: str, n: int, batch: int = 1000) -> None:
    for start in range(0, n, batch):
        async with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + batch, n)):
                pipe.xadd(key, {"data": str(i).encode()})
            await pipe.execute()


def _stream_source(key: str, *, window: int = 100, client_id: str = "c1", **options):
    options = {"kind": "stream", "start": "0", **options}
    return create_source(
        "redis",
        SETTINGS,
        topics=[key],
        window=window,
        group="g",
        client_id=client_id,
        options=options,
    )


async def test_stream_burst_every_message_once_window_held(conn_prefix, conn_redis_cleanup):
    client = conn_redis_cleanup
    key = conn_prefix + "burst"
    n, window = 20_000, 100
    source = _stream_source(key, window=window)
    rec = Recorder(delay=0.001)
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.state == "connected", 10, "connected")
    t0 = time.monotonic()
    await _xadd_burst(client, key, n)
    published = time.monotonic() - t0
    await wait_for(lambda: source.status.acked == n, 50, f"{n} acked")
    took = time.monotonic() - t0
    await source.stop()
    await runner
    assert len(rec.seen) == n
    assert len(set(rec.seen)) == n  # none handled twice
    assert rec.max_running <= window and source.status.max_in_flight <= window
    assert rec.max_running == window  # the window was actually used
    assert source.status.acked == n and source.status.received == n
    groups = await client.xinfo_groups(key)
    assert groups[0]["pending"] == 0
    print(
        f"\nredis stream burst: published {n} in {published:.2f}s, handled in {took:.2f}s "
        f"({n / took:.0f} msg/s), max in flight {rec.max_running}"
    )


async def test_stream_busy_source_reads_a_quarter_window_at_a_time(conn_prefix, conn_redis_cleanup):
    """Messages that finish one by one must not make the source read one by one."""
    client = conn_redis_cleanup
    key = conn_prefix + "refill"
    n, window = 1_000, 40
    await _xadd_burst(client, key, n)
    sizes: list[int] = []

    async def one(msg) -> None:  # type: ignore[no-untyped-def]
        await asyncio.sleep(random.uniform(0, 0.005))

    run_each = each(one)

    async def handler(msgs, settle) -> None:  # type: ignore[no-untyped-def]
        sizes.append(len(msgs))
        await run_each(msgs, settle)

    source = _stream_source(key, window=window)
    runner = asyncio.create_task(source.run(handler))
    await wait_for(lambda: source.status.acked == n, 30, f"{n} acked")
    await source.stop()
    await runner
    assert sum(sizes) == n
    assert sizes[0] == window
    assert min(sizes[:-1]) >= window // 4, sizes  # the last may be the stream's short tail


async def test_stream_acks_once_per_interval_and_at_stop(conn_prefix, conn_redis_cleanup):
    """Finished entries are XACKed together after `ack_interval_ms`; a stop inside the interval
    still acks every finished entry, so none is handled again."""
    client = conn_redis_cleanup
    key = conn_prefix + "ackint"
    source = _stream_source(key, ack_interval_ms=300)
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.state == "connected", 10, "connected")
    await _xadd_burst(client, key, 10)
    await wait_for(lambda: len(rec.seen) == 10, 10, "handled")
    await asyncio.sleep(0.05)
    assert source.status.acked == 0  # the first XACK waits for the interval
    assert (await client.xpending(key, "g"))["pending"] == 10
    await wait_for(lambda: source.status.acked == 10, 5, "acked together")
    assert (await client.xpending(key, "g"))["pending"] == 0

    await _xadd_burst(client, key, 5)
    await wait_for(lambda: len(rec.seen) == 15, 10, "handled")
    await source.stop()  # inside the next interval
    await runner
    assert source.status.acked == 15
    assert (await client.xpending(key, "g"))["pending"] == 0


async def test_stream_restart_resumes_unacked(conn_prefix, conn_redis_cleanup):
    client = conn_redis_cleanup
    key = conn_prefix + "resume"
    n = 500
    await _xadd_burst(client, key, n)
    first = _stream_source(key, window=20, drain_timeout=0.2)
    rec1 = Recorder()
    rec1.hold_after = 200  # the 201st and later handlers never finish
    runner = asyncio.create_task(first.run(each(rec1)))
    await wait_for(lambda: len(rec1.seen) >= 200 and first.status.in_flight == 20, 10, "held")
    await first.stop()
    await runner
    assert first.status.acked == 200
    pending = await client.xpending(key, "g")
    assert pending["pending"] == 20  # the held ones: delivered, never acked

    second = _stream_source(key, window=20)  # same consumer name: re-reads its pending first
    rec2 = Recorder()
    runner = asyncio.create_task(second.run(each(rec2)))
    await wait_for(lambda: second.status.acked == n - 200, 10, "rest acked")
    await second.stop()
    await runner
    assert sorted(int(p) for p in rec1.seen + rec2.seen) == list(range(n))


async def test_stream_claims_entries_of_dead_consumer(conn_prefix, conn_redis_cleanup):
    client = conn_redis_cleanup
    key = conn_prefix + "claim"
    await client.xgroup_create(key, "g", id="0", mkstream=True)
    await _xadd_burst(client, key, 30)
    # A consumer that read 30 entries and died without acking.
    await client.xreadgroup("g", "dead", {key: ">"}, count=30)
    source = _stream_source(key, window=10, client_id="alive", claim_idle_ms=300)
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.acked == 30, 15, "claimed and acked")
    await source.stop()
    await runner
    assert sorted(int(p) for p in rec.seen) == list(range(30))
    assert (await client.xpending(key, "g"))["pending"] == 0


async def test_stream_claims_entries_of_killed_consumer_within_seconds(
    conn_prefix, conn_redis_cleanup
):
    """A consumer whose liveness key lapsed (its server was SIGKILLed) loses its pending entries
    to a live consumer at once, not after `claim_idle_ms` (60 s by default)."""
    client = conn_redis_cleanup
    key = conn_prefix + "killed"
    dead = conn_prefix + "dead"
    await client.xgroup_create(key, "g", id="0", mkstream=True)
    await _xadd_burst(client, key, 30)
    # A consumer that read 30 entries, renewed its liveness key one last time, and was killed.
    await client.xreadgroup("g", dead, {key: ">"}, count=30)
    await client.set(alive_key("g", dead), b"1", px=ALIVE_TTL_MS)
    killed = time.monotonic()
    source = _stream_source(key, window=30, client_id=conn_prefix + "alive")
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.acked == 30, 10, "claimed and acked")
    took = time.monotonic() - killed
    await source.stop()
    await runner
    assert sorted(int(p) for p in rec.seen) == list(range(30))
    assert (await client.xpending(key, "g"))["pending"] == 0
    print(f"dead consumer's 30 entries handled {took:.1f}s after its last renewal")


async def _slow_keeps_its_five(slow, other, delay: float) -> None:
    """`slow` takes the stream's five entries and handles each for `delay` seconds while
    `other` runs beside it: `slow` handles all five, `other` none."""
    rec_slow, rec_other = Recorder(delay=delay), Recorder()
    tasks = [asyncio.create_task(slow.run(each(rec_slow)))]
    await wait_for(lambda: slow.status.in_flight == 5, 10, "slow holds all")
    tasks.append(asyncio.create_task(other.run(each(rec_other))))
    await wait_for(lambda: slow.status.acked == 5, delay + 8.5, "slow finished")
    await slow.stop()
    await other.stop()
    await asyncio.gather(*tasks)
    assert rec_other.seen == []
    assert sorted(rec_slow.seen) == sorted(str(i).encode() for i in range(5))


async def test_stream_live_slow_consumer_keeps_its_entries(conn_prefix, conn_redis_cleanup):
    """A live consumer busy longer than the liveness TTL (no reads, idle in XINFO) keeps its
    entries: its key is renewed, so the other consumer does not claim them."""
    client = conn_redis_cleanup
    key = conn_prefix + "alive"
    await _xadd_burst(client, key, 5)
    slow = _stream_source(key, window=5, client_id=conn_prefix + "slow")
    other = _stream_source(key, window=5, client_id=conn_prefix + "other")
    await _slow_keeps_its_five(slow, other, delay=ALIVE_TTL_MS / 1000 + 2.5)


async def test_stream_slow_handler_not_stolen(conn_prefix, conn_redis_cleanup):
    """In-flight entries are touched, so another consumer's XAUTOCLAIM does not take them."""
    client = conn_redis_cleanup
    key = conn_prefix + "touch"
    await _xadd_burst(client, key, 5)
    slow = _stream_source(key, window=5, client_id="slow", claim_idle_ms=300)
    other = _stream_source(key, window=5, client_id="other", claim_idle_ms=300)
    await _slow_keeps_its_five(slow, other, delay=1.5)
    assert (await client.xpending(key, "g"))["pending"] == 0


async def test_stream_lag_binary_and_fields(conn_prefix, conn_redis_cleanup):
    client = conn_redis_cleanup
    key = conn_prefix + "bin"
    blob = bytes(range(256)) + b"\xff\xfe\x00"
    await client.xadd(key, {"data": blob, "extra": b"x"})
    await client.xadd(key, {"a": "1", "b": "2"})  # no `data` field: fields as JSON
    source = _stream_source(key, window=4)
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.acked == 2, 10, "acked")
    await wait_for(lambda: source.status.lag == 0 and source.status.pending == 0, 10, "lag 0")
    await source.stop()
    await runner
    m1, m2 = rec.messages
    assert m1.payload == blob and m1.headers == {"extra": b"x"}
    assert m1.message_id and m1.timestamp > 1e9 and m1.client_id == "c1" and m1.topic == key
    assert m2.payload == b'{"a": "1", "b": "2"}'


async def test_stream_broker_down_at_start(conn_broker_factory, conn_prefix):
    broker = conn_broker_factory("redis", start=False)
    url = f"redis://127.0.0.1:{broker.port}/0"
    source = create_source(
        "redis",
        {"url": url},
        topics=["s"],
        window=10,
        group="g",
        client_id="c",
        options={"kind": "stream", "start": "0"},
    )
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.last_error is not None, 10, "an error")
    assert source.status.state == "reconnecting"
    assert "Connect" in source.status.last_error or "refused" in source.status.last_error
    broker.start()
    client = aredis.Redis.from_url(url)
    await wait_for(lambda: source.status.state == "connected", 15, "connected")
    await client.xadd("s", {"data": b"hello"})
    await wait_for(lambda: rec.seen == [b"hello"], 10, "message")
    await source.stop()
    await runner
    await client.aclose()


async def test_pubsub_overflow_counted_exactly(conn_prefix, conn_redis_cleanup):
    client = conn_redis_cleanup
    channel = conn_prefix + "ps"
    n = 3000
    source = create_source(
        "redis",
        SETTINGS,
        topics=[channel],
        window=5,
        group=None,
        client_id="ps",
        options={"kind": "pubsub", "buffer": 100},
    )
    rec = Recorder(delay=0.002)
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.state == "connected", 10, "subscribed")
    for start in range(0, n, 500):
        async with client.pipeline(transaction=False) as pipe:
            for i in range(start, start + 500):
                pipe.publish(channel, str(i))
            await pipe.execute()
    st = source.status
    await wait_for(lambda: len(rec.seen) + st.dropped == n, 30, "all handled or dropped")
    await source.stop()
    await runner
    assert st.dropped > 0
    assert len(rec.seen) + st.dropped == n
    assert len(set(rec.seen)) == len(rec.seen)
    assert rec.max_running <= 5


async def test_pubsub_patterns_and_binary(conn_prefix, conn_redis_cleanup):
    client = conn_redis_cleanup
    source = create_source(
        "redis",
        SETTINGS,
        topics=[conn_prefix + "dev.*", conn_prefix + "plain"],
        window=10,
        group=None,
        client_id="ps",
        options={"kind": "pubsub"},
    )
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.state == "connected", 10, "subscribed")
    blob = b"\x00\xff\x80binary"
    await client.publish(conn_prefix + "dev.1", blob)
    await client.publish(conn_prefix + "plain", b"p")
    await client.publish(conn_prefix + "other", b"ignored")
    await wait_for(lambda: len(rec.seen) == 2, 10, "two messages")
    await source.stop()
    await runner
    by_topic = {m.topic: m for m in rec.messages}
    assert by_topic[conn_prefix + "dev.1"].payload == blob
    assert by_topic[conn_prefix + "dev.1"].headers["pattern"] == (conn_prefix + "dev.*").encode()
    assert by_topic[conn_prefix + "plain"].payload == b"p"


async def test_publishers_read_back(conn_prefix, conn_redis_cleanup):
    client = conn_redis_cleanup
    name = conn_prefix + "conn"
    pub = get_publisher(name, "redis", SETTINGS)
    assert get_publisher(name, "redis", SETTINGS) is pub  # pooled
    pub.publish(conn_prefix + "st", {"a": 1}, kind="stream", maxlen=100)
    pub.publish(conn_prefix + "st", b"\x00\x01", kind="stream")
    entries = await client.xrange(conn_prefix + "st")
    assert [e[1][b"data"] for e in entries] == [b'{"a":1}', b"\x00\x01"]

    ps = client.pubsub()
    await ps.subscribe(conn_prefix + "ch")
    await ps.get_message(timeout=1)  # subscribe confirmation
    apub = await get_async_publisher(name, "redis", SETTINGS)
    assert await get_async_publisher(name, "redis", SETTINGS) is apub
    await apub.publish(conn_prefix + "ch", "héllo")
    msg = await ps.get_message(timeout=5, ignore_subscribe_messages=True)
    assert msg is not None and msg["data"] == "héllo".encode()
    await ps.aclose()

    other = dict(SETTINGS, socket_timeout=3)  # changed settings: reopened
    assert get_publisher(name, "redis", other) is not pub
    close_publisher(name)
    await close_async_publishers()


async def test_publisher_dead_port_raises_connector_error():
    from .conftest import free_port

    pub = get_publisher("dead-redis", "redis", {"host": "127.0.0.1", "port": free_port()})
    with pytest.raises(ConnectorError, match="publish to 't' failed"):
        pub.publish("t", "x")
    close_publisher("dead-redis")


async def test_stream_failed_handler_left_pending_then_retried(conn_prefix, conn_redis_cleanup):
    client = conn_redis_cleanup
    key = conn_prefix + "retry"
    await _xadd_burst(client, key, 10)
    source = _stream_source(key, window=5, claim_idle_ms=200)
    attempts: dict[bytes, int] = {}

    async def handler(msg):
        attempts[msg.payload] = attempts.get(msg.payload, 0) + 1
        if msg.payload == b"3" and attempts[msg.payload] == 1:
            raise RuntimeError("could not hand on")

    runner = asyncio.create_task(source.run(each(handler)))
    await wait_for(lambda: source.status.acked == 10, 15, "all acked after the retry")
    await source.stop()
    await runner
    assert attempts[b"3"] == 2 and source.status.failed == 1
    assert all(v == 1 for k, v in attempts.items() if k != b"3")
    assert (await client.xpending(key, "g"))["pending"] == 0


async def test_pubsub_reconnects_after_broker_restart(conn_broker_factory):
    broker = conn_broker_factory("redis")
    url = f"redis://127.0.0.1:{broker.port}/0"
    source = create_source(
        "redis",
        {"url": url},
        topics=["ch"],
        window=5,
        group=None,
        client_id="ps",
        options={"kind": "pubsub", "reconnect_max": 0.5},
    )
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.state == "connected", 10, "subscribed")
    broker.stop()
    await wait_for(lambda: source.status.state == "reconnecting", 10, "noticed the outage")
    assert source.status.last_error
    broker.start()
    await wait_for(lambda: source.status.state == "connected", 15, "resubscribed")
    client = aredis.Redis.from_url(url)
    await client.publish("ch", b"after")
    await wait_for(lambda: rec.seen == [b"after"], 10, "message after restart")
    await client.aclose()
    await source.stop()
    await runner
