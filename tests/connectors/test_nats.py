"""NATS JetStream connector against a real nats-server started per test (own port and store)."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js.api import StreamConfig

from fnhub.connectors import create_source, each, get_async_publisher, get_publisher, get_type
from fnhub.connectors.pool import close_async_publishers, close_publisher

from .conftest import Broker, wait_for


async def _stream(port: int, name: str, subjects: list[str]) -> None:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    await nc.jetstream().add_stream(StreamConfig(name=name, subjects=subjects))
    await nc.close()


async def _publish(port: int, subject: str, payloads: list[bytes]) -> None:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    acks = [js.publish(subject, p) for p in payloads]
    for i in range(0, len(acks), 500):
        await asyncio.gather(*acks[i : i + 500])
    await nc.close()


async def _consumer(port: int, stream: str, durable: str):  # type: ignore[no-untyped-def]
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    info = await nc.jetstream().consumer_info(stream, durable)
    await nc.close()
    return info


@pytest.fixture
def conn_nats(conn_broker_factory) -> Broker:  # type: ignore[no-untyped-def]
    return conn_broker_factory("nats")


def _source(port: int, topics: list[str], window: int = 50, **options):  # type: ignore[no-untyped-def]
    return create_source(
        "nats",
        {"servers": f"nats://127.0.0.1:{port}"},
        topics=topics,
        window=window,
        group="g1",
        client_id="test-client",
        options=options,
    )


async def test_every_message_is_acked_only_after_its_handler(conn_nats: Broker) -> None:
    await _stream(conn_nats.port, "EV", ["ev.>"])
    n = 2000
    await _publish(conn_nats.port, "ev.a", [f"m{i}".encode() for i in range(n)])
    source = _source(conn_nats.port, ["ev.>"], window=50)
    seen: list[bytes] = []
    acked_before: list[int] = []

    async def handle(msg) -> None:  # type: ignore[no-untyped-def]
        acked_before.append(source.status.acked)
        await asyncio.sleep(0.001)
        seen.append(msg.payload)

    run = asyncio.create_task(source.run(each(handle)))
    await wait_for(lambda: source.status.acked == n, 30, "every ack")
    await source.stop()
    await run
    assert sorted(seen) == sorted(f"m{i}".encode() for i in range(n))
    assert source.status.max_in_flight <= 50
    assert max(acked_before) < n  # nothing was acked before its own handler ran
    info = await _consumer(conn_nats.port, "EV", "g1")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_failed_message_is_redelivered(conn_nats: Broker) -> None:
    await _stream(conn_nats.port, "RE", ["re.*"])
    await _publish(conn_nats.port, "re.x", [b"boom", b"fine"])
    source = _source(conn_nats.port, ["re.*"], ack_wait=1.0)
    tries: list[tuple[bytes, bool]] = []

    async def handle(msg) -> None:  # type: ignore[no-untyped-def]
        tries.append((msg.payload, msg.redelivered))
        if msg.payload == b"boom" and not msg.redelivered:
            raise RuntimeError("first try fails")

    run = asyncio.create_task(source.run(each(handle)))
    await wait_for(lambda: (b"boom", True) in tries, 15, "the redelivery")
    await wait_for(lambda: source.status.acked == 2, 5, "both acked")
    await source.stop()
    await run
    assert tries.count((b"fine", False)) == 1


async def test_the_source_reconnects_after_a_broker_restart(conn_nats: Broker) -> None:
    await _stream(conn_nats.port, "RS", ["rs.>"])
    source = _source(conn_nats.port, ["rs.>"])
    seen: list[bytes] = []

    async def handle(msg) -> None:  # type: ignore[no-untyped-def]
        seen.append(msg.payload)

    run = asyncio.create_task(source.run(each(handle)))
    await wait_for(lambda: source.status.state == "connected", 10, "connected")
    await _publish(conn_nats.port, "rs.a", [b"before"])
    await wait_for(lambda: seen == [b"before"], 10, "the first message")
    conn_nats.stop()
    await wait_for(lambda: source.status.state != "connected", 15, "the outage noticed")
    conn_nats.start()
    await wait_for(lambda: source.status.state == "connected", 20, "reconnected")
    await _publish(conn_nats.port, "rs.a", [b"after"])
    await wait_for(lambda: seen == [b"before", b"after"], 15, "a message after the restart")
    await source.stop()
    await run


async def test_publishers_wait_for_the_stream(conn_nats: Broker) -> None:
    await _stream(conn_nats.port, "PUB", ["pub.>"])
    settings = {"servers": f"nats://127.0.0.1:{conn_nats.port}"}
    sync = await asyncio.to_thread(get_publisher, "natsp", "nats", settings)
    await asyncio.to_thread(sync.publish, "pub.sync", {"n": 1})
    apub = await get_async_publisher("natsp", "nats", settings)
    await apub.publish("pub.async", "two")
    with pytest.raises(Exception, match="pub-nowhere"):
        await apub.publish("pub-nowhere", "no stream stores it", timeout=1)
    await close_async_publishers("natsp")
    await asyncio.to_thread(close_publisher, "natsp")
    nc = await nats.connect(settings["servers"])
    info = await nc.jetstream().stream_info("PUB")
    await nc.close()
    assert info.state.messages == 2


@pytest.mark.parametrize(
    ("subject_filter", "subject", "matches"),
    [
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.b.d", False),
        ("a.*", "a.b.c", False),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        (">", "a.b", True),
        ("a.b", "a.b", True),
        ("a.b", "a.bc", False),
    ],
)
def test_subjects_match_as_nats_does(subject_filter: str, subject: str, matches: bool) -> None:
    assert get_type("nats").topic_matches(subject_filter, subject) is matches
