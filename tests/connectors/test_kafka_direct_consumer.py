"""A worker child's Kafka consumer (`KafkaDirectConsumer`) on its own, against a private Tansu:
what a batch's ack commits (the lowest unsettled offset per partition), what is read again,
and which messages are marked as possibly handled before."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from fnhub.connectors.base import DirectPlace, Message
from fnhub.connectors.kafka.direct import KafkaDirectConsumer
from fnhub.connectors.kafka.settings import KafkaSettings, KafkaSourceOptions

from .test_kafka import _bootstrap, _create_topic, _produce


def _committed(port: int, group: str, tp: TopicPartition) -> int | None:
    async def run() -> int | None:
        c = AIOKafkaConsumer(bootstrap_servers=_bootstrap(port), group_id=group)
        await c.start()
        try:
            return await c.committed(tp)
        finally:
            await c.stop()

    return asyncio.run(run())


def _read(c: KafkaDirectConsumer, want: int) -> list[Message]:
    got: list[Message] = []
    for _ in range(40):
        got += c.read(want - len(got), 250)
        if len(got) >= want:
            break
    return got


def test_ack_commits_up_to_the_lowest_unsettled_offset_and_the_rest_is_read_again(conn_tansu):
    port = conn_tansu.port
    asyncio.run(_create_topic(port, "part", partitions=1))
    asyncio.run(_produce(port, "part", [b"m%d" % i for i in range(10)], headers=[("h", b"1")]))
    c = KafkaDirectConsumer(
        KafkaSettings(bootstrap_servers=_bootstrap(port)),
        topics=["part"],
        group="g-part",
        consumer="child-0",
        options=KafkaSourceOptions(),
        place=DirectPlace(mode="single"),
    )
    tp = TopicPartition("part", 0)
    c.open()
    try:
        first = _read(c, 4)
        assert [m.offset for m in first] == [0, 1, 2, 3]
        # a freshly assigned partition: the first batch's worth may have been handled before
        assert all(m.redelivered for m in first)
        assert first[0].headers == {"h": b"1"} and first[0].message_id == "part:0:0"
        c.ack([first[0], first[1], first[3]])  # offset 2 still in hand
        assert _committed(port, "g-part", tp) == 2

        again = _read(c, 8)  # rewound to the first unsettled offset
        assert [m.offset for m in again] == [2, 3, 4, 5, 6, 7, 8, 9]
        assert not any(m.redelivered for m in again)
        c.ack(again)
        assert _committed(port, "g-part", tp) == 10
        assert c.read(10, 100) == []
    finally:
        c.close()
