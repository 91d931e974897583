"""A `single` subscription's Kafka source commits nothing once the subscription's lease is no
longer ours (`CommitsPositions`): its next holder has read, or is about to read, the committed
offsets and goes on from them. In the cluster bench's netem fault (200 ms, 20 % loss on the
holder's link) the old holder's drain went on committing for 2.6 s after its lease lapsed,
under the new holder's own commits, and moved a partition's offset back from 162 to 145."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from fnhub.connectors import Message, each
from fnhub.connectors.base import CommitsPositions

from .conftest import wait_for
from .test_kafka import _bootstrap, _create_topic, _produce, _source


async def _committed(port: int, topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=_bootstrap(port), group_id="g")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return sum([await consumer.committed(tp) or 0 for tp in tps])
    finally:
        await consumer.stop()


async def test_a_source_whose_lease_is_lost_commits_nothing_more(conn_tansu) -> None:
    port = conn_tansu.port
    await _create_topic(port, "lost", partitions=2)
    source = _source(
        port, ["lost"], window=100, assignment="manual", commit_interval_ms=50, drain_timeout=5
    )
    assert isinstance(source, CommitsPositions)
    held = True
    source.lease_held = lambda: held  # what the runner sets in `single` mode
    gate = asyncio.Event()
    gate.set()
    seen: list[bytes] = []

    async def handler(msg: Message) -> None:
        seen.append(msg.payload)
        await gate.wait()

    runner = asyncio.create_task(source.run(each(handler)))
    await _produce(port, "lost", [f"a{i}".encode() for i in range(20)])
    await wait_for(lambda: source.status.acked == 20, 15, "the first 20 committed")
    gate.clear()  # the next ones stay in flight
    await _produce(port, "lost", [f"b{i}".encode() for i in range(10)])
    await wait_for(lambda: source.status.in_flight == 10, 15, "10 in flight")
    held = False  # the lease lapsed (by our clock): the next holder reads from offset 20
    gate.set()  # they finish now, as the tasks of a lapsed holder still do
    await wait_for(lambda: source.status.in_flight == 0, 15, "settled")
    await asyncio.sleep(0.3)  # six commit intervals
    await source.stop()  # and the stop's own commit
    await runner
    assert len(seen) == 30
    assert source.status.acked == 20
    assert await _committed(port, "lost", 2) == 20  # the old code committed 30
