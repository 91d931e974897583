"""RabbitMQ connector on the machine's RabbitMQ (exchanges and queues named per test and deleted
after) and, to restart a broker, on a node of the test's own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest

from fnhub.connectors import create_source, each, get_async_publisher, get_publisher, get_type
from fnhub.connectors.pool import close_async_publishers, close_publisher

from .conftest import RabbitNode, wait_for

MACHINE_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
async def names() -> AsyncIterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:10]
    made = {"exchange": f"fnhub-test-{tag}", "queue": f"fnhub-test-q-{tag}"}
    yield made
    connection = await aio_pika.connect(MACHINE_URL)
    channel = await connection.channel()
    for what, delete in (("queue", channel.queue_delete), ("exchange", channel.exchange_delete)):
        try:
            await delete(made[what])
        except Exception:
            channel = await connection.channel()
    await connection.close()


async def _publish(url: str, exchange: str, key: str, payloads: list[bytes]) -> None:
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    ex = await channel.declare_exchange(exchange, "topic", durable=True)
    for i in range(0, len(payloads), 500):
        await asyncio.gather(
            *(ex.publish(aio_pika.Message(p), routing_key=key) for p in payloads[i : i + 500])
        )
    await connection.close()


async def _queue_depth(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    q = await channel.declare_queue(queue, passive=True)
    await connection.close()
    return q.declaration_result.message_count


def _source(url: str, exchange: str, queue: str, topics: list[str], window: int = 50):  # type: ignore[no-untyped-def]
    return create_source(
        "rabbitmq",
        {"url": url, "exchange": exchange},
        topics=topics,
        window=window,
        group=queue,
        client_id=f"test-{queue}",
        options={"drain_timeout": 2},
    )


async def test_every_message_is_acked_only_after_its_handler(names: dict[str, str]) -> None:
    source = _source(MACHINE_URL, names["exchange"], names["queue"], ["ev.*.temp", "ev.#.alarm"])
    seen: list[bytes] = []
    acked_before: list[int] = []

    async def handle(msg) -> None:  # type: ignore[no-untyped-def]
        acked_before.append(source.status.acked)
        await asyncio.sleep(0.001)
        seen.append(msg.payload)

    run = asyncio.create_task(source.run(each(handle)))
    await wait_for(lambda: source.status.state == "connected", 15, "connected")
    n = 2000
    await _publish(
        MACHINE_URL, names["exchange"], "ev.a.temp", [f"m{i}".encode() for i in range(n)]
    )
    await _publish(MACHINE_URL, names["exchange"], "ev.a.b.alarm", [b"alarm"])
    await _publish(MACHINE_URL, names["exchange"], "ev.a.b.temp", [b"not bound"])
    await wait_for(lambda: source.status.acked == n + 1, 30, "every ack")
    await source.stop()
    await run
    assert sorted(seen) == sorted([f"m{i}".encode() for i in range(n)] + [b"alarm"])
    assert source.status.max_in_flight <= 50
    # when the i-th handler started, at most the i before it had finished (and been acked)
    assert all(acked <= i for i, acked in enumerate(acked_before))
    assert await _queue_depth(MACHINE_URL, names["queue"]) == 0


async def test_unfinished_messages_go_back_to_the_queue(names: dict[str, str]) -> None:
    source = _source(MACHINE_URL, names["exchange"], names["queue"], ["slow"], window=5)
    started: list[bytes] = []

    async def handle(msg) -> None:  # type: ignore[no-untyped-def]
        started.append(msg.payload)
        await asyncio.sleep(60)

    run = asyncio.create_task(source.run(each(handle)))
    await wait_for(lambda: source.status.state == "connected", 15, "connected")
    await _publish(MACHINE_URL, names["exchange"], "slow", [f"s{i}".encode() for i in range(8)])
    await wait_for(lambda: len(started) == 5, 10, "a full window")  # prefetch holds the rest
    await asyncio.sleep(0.3)
    assert len(started) == 5
    await source.stop()  # handlers cancelled after drain_timeout: nothing acked
    await run
    assert await _queue_depth(MACHINE_URL, names["queue"]) == 8


async def test_a_failed_message_stays_unacked_and_the_rest_are_acked(
    names: dict[str, str],
) -> None:
    """Runs of finished messages are acked together; past a failed one, one by one."""
    source = _source(MACHINE_URL, names["exchange"], names["queue"], ["f"], window=20)

    async def handle(msg) -> None:  # type: ignore[no-untyped-def]
        if msg.payload == b"m3":
            raise RuntimeError("fails")

    run = asyncio.create_task(source.run(each(handle)))
    await wait_for(lambda: source.status.state == "connected", 15, "connected")
    await _publish(MACHINE_URL, names["exchange"], "f", [f"m{i}".encode() for i in range(10)])
    await wait_for(lambda: source.status.acked == 9, 10, "the nine that worked acked")
    await _publish(MACHINE_URL, names["exchange"], "f", [b"later"])
    await wait_for(lambda: source.status.acked == 10, 10, "a message after the failed one")
    await source.stop()
    await run
    assert await _queue_depth(MACHINE_URL, names["queue"]) == 1  # m3, back in the queue


async def test_the_source_reconnects_after_a_broker_restart(conn_rabbit_node: RabbitNode) -> None:
    node = conn_rabbit_node
    source = _source(node.url, "ex", "q", ["a.#"])
    seen: list[bytes] = []

    async def handle(msg) -> None:  # type: ignore[no-untyped-def]
        seen.append(msg.payload)

    run = asyncio.create_task(source.run(each(handle)))
    await wait_for(lambda: source.status.state == "connected", 15, "connected")
    await _publish(node.url, "ex", "a.b", [b"before"])
    await wait_for(lambda: seen == [b"before"], 10, "the first message")
    await asyncio.to_thread(node.ctl, "stop_app")
    await wait_for(lambda: source.status.state != "connected", 15, "the outage noticed")
    await asyncio.to_thread(node.ctl, "start_app")
    await wait_for(lambda: source.status.state == "connected", 30, "reconnected")
    await _publish(node.url, "ex", "a.b", [b"after"])
    await wait_for(lambda: seen == [b"before", b"after"], 15, "a message after the restart")
    await source.stop()
    await run


async def test_publishers_wait_for_the_confirm(names: dict[str, str]) -> None:
    settings = {"url": MACHINE_URL, "exchange": names["exchange"]}
    source = _source(MACHINE_URL, names["exchange"], names["queue"], ["out.#"])
    got: list[tuple[str, bytes]] = []

    async def handle(msg) -> None:  # type: ignore[no-untyped-def]
        got.append((msg.topic, msg.payload))

    run = asyncio.create_task(source.run(each(handle)))
    await wait_for(lambda: source.status.state == "connected", 15, "connected")
    sync = await asyncio.to_thread(get_publisher, "rmqp", "rabbitmq", settings)
    await asyncio.to_thread(sync.publish, "out.sync", {"n": 1})
    apub = await get_async_publisher("rmqp", "rabbitmq", settings)
    await apub.publish("out.async", "two")
    with pytest.raises(Exception, match="NO_ROUTE"):
        await apub.publish("nowhere", "no queue is bound", mandatory=True)
    await close_async_publishers("rmqp")
    await asyncio.to_thread(close_publisher, "rmqp")
    await wait_for(lambda: len(got) == 2, 10, "both published messages")
    assert sorted(got) == [("out.async", b"two"), ("out.sync", b'{"n":1}')]
    await source.stop()
    await run


@pytest.mark.parametrize(
    ("binding", "key", "matches"),
    [
        ("a.*.c", "a.b.c", True),
        ("a.*", "a.b.c", False),
        ("a.#", "a.b.c", True),
        ("a.#", "a", True),
        ("#", "a.b", True),
        ("a.#.c", "a.c", True),
        ("a.#.c", "a.x.y.c", True),
        ("a.#.c", "a.x.y.d", False),
        ("a.b", "a.b", True),
    ],
)
def test_routing_keys_match_as_a_topic_exchange(binding: str, key: str, matches: bool) -> None:
    assert get_type("rabbitmq").topic_matches(binding, key) is matches
