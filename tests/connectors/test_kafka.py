"""Kafka source and publishers against a private Tansu broker (memory storage).

Tansu quirks shape the options: the first group assignment takes about half the session
timeout, so tests use session_timeout_ms 1000 and heartbeats at a third of it; `latest` is
broken there, so sources start at `earliest` (the default).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tests.conftest import REDIS_URL
from tests.private_redis import PrivateRedis

from fnhub.connectors import (
    ConnectorError,
    create_source,
    each,
    get_async_publisher,
    get_publisher,
)
from fnhub.connectors.pool import close_async_publishers, close_publisher
from fnhub.shares import Shares

from .conftest import Recorder, wait_for

FAST_GROUP = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 300}


def _bootstrap(port: int) -> str:
    return f"127.0.0.1:{port}"


async def _create_topic(port: int, topic: str, partitions: int = 4) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=_bootstrap(port))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def _produce(port: int, topic: str, payloads: list[bytes], **kw) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=_bootstrap(port), linger_ms=5, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, p, **kw) for p in payloads]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _source(port: int, topics: list[str], *, window: int, group: str = "g", **options):
    return create_source(
        "kafka",
        {"bootstrap_servers": _bootstrap(port)},
        topics=topics,
        window=window,
        group=group,
        client_id="fnhub-test",
        options={**FAST_GROUP, **options},
    )


async def test_burst_every_message_once_window_held(conn_tansu):
    port = conn_tansu.port
    n, window = 20_000, 100
    await _create_topic(port, "burst")
    source = _source(port, ["burst"], window=window, commit_interval_ms=200)
    rec = Recorder(delay=0.001)
    runner = asyncio.create_task(source.run(each(rec)))
    t0 = time.monotonic()
    payloads = [str(i).encode() for i in range(n)]
    await _produce(port, "burst", payloads)
    produced = time.monotonic() - t0
    await wait_for(lambda: len(rec.seen) == n, 55, f"{n} handled")
    await wait_for(lambda: source.status.acked == n, 10, f"{n} committed")
    took = time.monotonic() - t0
    await source.stop()
    await runner
    assert len(set(rec.seen)) == n  # none handled twice
    assert rec.max_running <= window and source.status.max_in_flight <= window
    consumer = AIOKafkaConsumer(bootstrap_servers=_bootstrap(port), group_id="g")
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic("burst") or set()
        committed = [await consumer.committed(TopicPartition("burst", p)) for p in parts]
    finally:
        await consumer.stop()
    assert sum(c or 0 for c in committed) == n  # committed exactly past every message
    print(
        f"\nkafka burst: produced {n} in {produced:.2f}s, handled+committed in {took:.2f}s "
        f"from start incl. group join ({n / took:.0f} msg/s), max in flight {rec.max_running}"
    )


async def test_restart_resumes_uncommitted(conn_tansu):
    port = conn_tansu.port
    n = 400
    await _create_topic(port, "resume", partitions=2)
    payloads = [str(i).encode() for i in range(n)]
    await _produce(port, "resume", payloads)
    first = _source(port, ["resume"], window=20, drain_timeout=0.2, commit_interval_ms=50)
    rec1 = Recorder()
    rec1.hold_after = 150
    runner = asyncio.create_task(first.run(each(rec1)))
    await wait_for(lambda: len(rec1.seen) >= 150 and first.status.in_flight == 20, 20, "held")
    await first.stop()
    await runner
    # Held handlers were cancelled: nothing at or after them is committed.
    assert first.status.acked <= 150

    second = _source(port, ["resume"], window=20)
    rec2 = Recorder()
    runner = asyncio.create_task(second.run(each(rec2)))
    await wait_for(lambda: set(rec1.seen) | set(rec2.seen) == set(payloads), 30, "all")
    await second.stop()
    await runner
    # Every message whose offset was not committed arrived again; none is missing.
    assert set(rec1.seen) | set(rec2.seen) == set(payloads)
    assert len(rec2.seen) >= n - 150


async def test_pause_keeps_window_and_failed_handler_blocks_commit(conn_tansu):
    port = conn_tansu.port
    await _create_topic(port, "fail", partitions=1)
    await _produce(port, "fail", [str(i).encode() for i in range(50)])
    source = _source(port, ["fail"], window=3, commit_interval_ms=50)
    seen: list[bytes] = []
    running = 0
    max_running = 0

    async def handler(msg):  # type: ignore[no-untyped-def]
        nonlocal running, max_running
        running += 1
        max_running = max(max_running, running)
        try:
            await asyncio.sleep(0.002)
            seen.append(msg.payload)
            if msg.payload == b"10":
                raise RuntimeError("could not hand on")
        finally:
            running -= 1

    runner = asyncio.create_task(source.run(each(handler)))
    await wait_for(lambda: len(seen) == 50, 20, "all handled")
    await wait_for(lambda: source.status.acked == 10, 10, "commits up to the failure")
    await source.stop()
    await runner
    assert max_running <= 3
    assert source.status.failed == 1
    assert source.status.acked == 10  # offsets 0..9: never past the failed offset 10


async def test_broker_down_at_start(conn_broker_factory):
    broker = conn_broker_factory("tansu", start=False)
    source = _source(broker.port, ["late"], window=5)
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.last_error is not None, 15, "an error")
    assert source.status.state == "reconnecting"
    assert "bootstrap" in source.status.last_error.lower()
    broker.start()
    await _create_topic(broker.port, "late", partitions=1)
    blob = b"\x00\xff\xfe\x80binary"
    await _produce(broker.port, "late", [blob], key=b"k1", headers=[("h", b"\x01")])
    await wait_for(lambda: len(rec.seen) == 1, 30, "message after broker start")
    await source.stop()
    await runner
    m = rec.messages[0]
    assert m.payload == blob and m.key == b"k1" and m.headers == {"h": b"\x01"}
    assert m.partition == 0 and m.offset == 0 and m.timestamp > 1e9


async def test_publishers_read_back(conn_tansu):
    port = conn_tansu.port
    await _create_topic(port, "out", partitions=1)
    settings = {"bootstrap_servers": _bootstrap(port)}
    pub = await asyncio.to_thread(get_publisher, "k1", "kafka", settings)
    assert get_publisher("k1", "kafka", settings) is pub
    await asyncio.to_thread(pub.publish, "out", {"a": 1}, key="key", headers={"h": "v"})
    apub = await get_async_publisher("k1", "kafka", settings)
    await apub.publish("out", b"\x00\xff", partition=0)
    consumer = AIOKafkaConsumer(
        "out", bootstrap_servers=_bootstrap(port), auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        got = []
        while len(got) < 2:
            batch = await consumer.getmany(timeout_ms=1000)
            got += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    assert got[0].value == b'{"a":1}' and got[0].key == b"key"
    assert list(got[0].headers) == [("h", b"v")]
    assert got[1].value == b"\x00\xff"
    await asyncio.to_thread(close_publisher, "k1")
    await close_async_publishers()


async def test_publisher_dead_port():
    from .conftest import free_port

    settings = {"bootstrap_servers": f"127.0.0.1:{free_port()}", "request_timeout_ms": 2000}
    with pytest.raises(ConnectorError, match="cannot connect"):
        await asyncio.to_thread(get_publisher, "k-dead", "kafka", settings)


async def test_rebalance_commits_done_work_second_member_takes_over(conn_tansu):
    port = conn_tansu.port
    n, window = 4000, 10
    await _create_topic(port, "rb", partitions=4)
    payloads = [str(i).encode() for i in range(n)]
    await _produce(port, "rb", payloads)
    a = _source(port, ["rb"], window=window, commit_interval_ms=100)
    b = _source(port, ["rb"], window=window, commit_interval_ms=100)
    rec_a, rec_b = Recorder(delay=0.01), Recorder(delay=0.01)
    tasks = [asyncio.create_task(a.run(each(rec_a)))]
    await wait_for(lambda: len(rec_a.seen) >= 300, 20, "first member working")
    tasks.append(asyncio.create_task(b.run(each(rec_b))))
    await wait_for(lambda: len(rec_b.seen) > 0, 30, "second member got partitions")
    await wait_for(lambda: set(rec_a.seen) | set(rec_b.seen) == set(payloads), 60, "all handled")
    await a.stop()
    await b.stop()
    await asyncio.gather(*tasks)
    both = rec_a.seen + rec_b.seen
    duplicates = len(both) - len(set(both))
    # Done work was committed when partitions were revoked: only the handlers still running
    # at that moment (at most one window) may be handled again by the new owner.
    assert duplicates <= window
    assert rec_a.max_running <= window and rec_b.max_running <= window


async def test_broker_outage_mid_run_shows_and_recovers(conn_broker_factory):
    broker = conn_broker_factory("tansu")
    await _create_topic(broker.port, "mid", partitions=1)
    source = _source(broker.port, ["mid"], window=5)
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    await _produce(broker.port, "mid", [b"before"])
    await wait_for(lambda: rec.seen == [b"before"], 30, "message before the outage")
    assert source.status.state == "connected"
    broker.stop()
    # an idle consumer looks the same with or without a broker: the status must still tell
    await wait_for(lambda: source.status.state == "reconnecting", 20, "outage shown")
    assert source.status.last_error
    broker.start()  # memory storage: the topic is made again and its offsets start over
    await _create_topic(broker.port, "mid", partitions=1)
    # offset 0 may sit below the consumer's kept position (1): offset 1 is after it either way
    await _produce(broker.port, "mid", [b"refill", b"after"])
    await wait_for(lambda: b"after" in rec.seen, 60, "message after the outage")
    await wait_for(lambda: source.status.state == "connected", 10, "connected again")
    await source.stop()
    await runner


async def test_a_message_after_a_quiet_spell_arrives_within_the_fetch_wait(conn_tansu):
    """Tansu does not answer a waiting fetch as soon as data arrives: `fetch_max_wait_ms`
    bounds how long the first message after a quiet spell waits."""
    port = conn_tansu.port
    await _create_topic(port, "quiet", partitions=1)
    source = _source(port, ["quiet"], window=10, fetch_max_wait_ms=20)
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    producer = AIOKafkaProducer(bootstrap_servers=_bootstrap(port), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait("quiet", b"first")
        await wait_for(lambda: len(rec.seen) == 1, 30, "subscribed")
        delays = []
        for i in range(5):
            await asyncio.sleep(0.3)  # quiet: the consumer's fetch is waiting on the broker
            sent = time.monotonic()
            await producer.send_and_wait("quiet", str(i).encode())
            await wait_for(lambda n=i + 2: len(rec.seen) == n, 5, "delivered")
            delays.append(time.monotonic() - sent)
    finally:
        await producer.stop()
        await source.stop()
        await runner
    # with aiokafka's default of 500 ms, Tansu answered after 70-85 ms; with 20 ms, in 10-35 ms
    assert sorted(delays)[2] < 0.06, delays


async def test_manual_assignment_reads_every_partition_at_once_and_resumes(conn_tansu):
    """`assignment: manual` (single mode's): no group join, so the first messages arrive
    without the join's delay; a topic created later is picked up without redelivering the
    others; a second source under the same group resumes at the committed offsets."""
    port = conn_tansu.port
    await _create_topic(port, "ma", partitions=4)
    first_batch = [f"a{i}".encode() for i in range(40)]
    await _produce(port, "ma", first_batch)
    # the group options would slow a group join to 5 s on Tansu; manual never joins
    opts = {"assignment": "manual", "session_timeout_ms": 10000, "heartbeat_interval_ms": 3000}
    source = _source(port, ["ma", "mb"], window=100, commit_interval_ms=50, **opts)
    rec = Recorder()
    started = time.monotonic()
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: len(rec.seen) == len(first_batch), 10, "the first topic")
    first_message = time.monotonic() - started
    assert first_message < 3, f"first messages after {first_message:.1f}s"
    later = [f"b{i}".encode() for i in range(5)]
    await _produce(port, "mb", later)  # created now (auto-create on produce)
    await wait_for(lambda: len(rec.seen) == len(first_batch) + len(later), 15, "the new topic")
    assert sorted(rec.seen) == sorted(first_batch + later)  # none twice
    await wait_for(lambda: source.status.acked == len(rec.seen), 10, "committed")
    await source.stop()
    await runner

    more = [f"a-more{i}".encode() for i in range(3)]
    await _produce(port, "ma", more)
    second = _source(port, ["ma", "mb"], window=100, **opts)
    rec2 = Recorder()
    runner = asyncio.create_task(second.run(each(rec2)))
    await wait_for(lambda: len(rec2.seen) == len(more), 10, "resumed")
    await asyncio.sleep(0.5)
    await second.stop()
    await runner
    assert sorted(rec2.seen) == sorted(more)


def _shares(client, name: str, member: str) -> Shares:
    return Shares(client, f"{name}:members", f"{name}:share:", member, ttl=3.0)


async def test_lease_assignment_a_joining_member_takes_its_share_without_redelivery(conn_tansu):
    """`assignment: lease` (multiple mode's): a member joining gets half the partitions from the
    one reading them all; the partitions handed over are settled and committed first, so no
    message is handled twice, and the member giving them up never stops the others. A member
    that stops releases its leases: the other reads everything at once."""
    port = conn_tansu.port
    n, window = 3000, 10
    await _create_topic(port, "ls", partitions=4)
    payloads = [str(i).encode() for i in range(n)]
    await _produce(port, "ls", payloads)
    client = aredis.Redis.from_url(REDIS_URL)
    name = f"tshare{uuid.uuid4().hex[:8]}"
    a, b = (
        create_source(
            "kafka",
            {"bootstrap_servers": _bootstrap(port)},
            topics=["ls"],
            window=window,
            group=name,
            client_id=f"fnhub-{member}",
            options={"assignment": "lease", "commit_interval_ms": 100},
            shares=_shares(client, name, member),
        )
        for member in ("a", "b")
    )
    rec_a, rec_b = Recorder(delay=0.02), Recorder(delay=0.02)  # b joins mid-stream
    tasks = [asyncio.create_task(a.run(each(rec_a)))]
    try:
        sa, sb = a.share.shares, b.share.shares  # type: ignore[attr-defined]
        await wait_for(lambda: len(sa.held()) == 4 and len(rec_a.seen) > 50, 10, "a reads")
        tasks.append(asyncio.create_task(b.run(each(rec_b))))
        await wait_for(lambda: len(sa.held()) == len(sb.held()) == 2, 10, "2 and 2")
        joined = len(rec_a.seen)
        later = [f"later{i}".encode() for i in range(200)]
        await _produce(port, "ls", later)
        everything = set(payloads) | set(later)
        await wait_for(lambda: set(rec_a.seen) | set(rec_b.seen) == everything, 60, "all")
        both = rec_a.seen + rec_b.seen
        assert len(both) == len(set(both)), "handled twice across the hand-over"
        # each read its two partitions after the split
        assert {m.partition for m in rec_b.messages} == {int(i[3:]) for i in sb.held()}
        assert {m.partition for m in rec_a.messages[joined:]} == {int(i[3:]) for i in sa.held()}
        await a.stop()
        stopped = time.monotonic()
        more = [f"more{i}".encode() for i in range(40)]
        await _produce(port, "ls", more)
        await wait_for(lambda: set(more) <= set(rec_b.seen), 10, "b reads everything")
        assert time.monotonic() - stopped < 2.5  # released, not lapsed (3 s)
    finally:
        await a.stop()
        await b.stop()
        await asyncio.gather(*tasks)
        await client.aclose()


async def test_lease_assignment_stops_reading_while_redis_is_away_and_resumes(conn_tansu, tmp_path):
    """A Redis outage longer than the leases: the source stops handing out its partitions'
    records once the leases lapsed by its clock (another member could hold them), and reads
    on from the committed offsets when Redis is back: nothing lost, nothing twice."""
    port = conn_tansu.port
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    client = aredis.Redis.from_url(server.url, socket_connect_timeout=0.3, socket_timeout=0.5)
    await _create_topic(port, "away", partitions=2)
    source = create_source(
        "kafka",
        {"bootstrap_servers": _bootstrap(port)},
        topics=["away"],
        window=10,
        group="away",
        client_id="fnhub-away",
        options={"assignment": "lease", "commit_interval_ms": 50},
        shares=_shares(client, "away", "a"),
    )
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    try:
        first = [f"a{i}".encode() for i in range(30)]
        await _produce(port, "away", first)
        await wait_for(lambda: sorted(rec.seen) == sorted(first), 15, "read")
        await wait_for(lambda: source.status.acked == len(first), 5, "committed")
        await asyncio.to_thread(server.stop)
        share = source.share  # type: ignore[attr-defined]
        await wait_for(lambda: not share.reading, 5, "leases lapsed")
        assert "partition leases" in (source.status.last_error or "")
        during = [f"b{i}".encode() for i in range(10)]
        await _produce(port, "away", during)
        await asyncio.sleep(1.0)
        assert not set(during) & set(rec.seen), "read without a lease"
        await asyncio.to_thread(server.start)
        await wait_for(lambda: set(during) <= set(rec.seen), 15, "read again")
        assert sorted(rec.seen) == sorted(first + during)  # nothing twice
    finally:
        await source.stop()
        await runner
        await client.aclose()
        server.close()
