"""RabbitMQ subscriptions end to end: real `fnhub server` and `fnhub worker` processes, the
machine's RabbitMQ (exchange and queues named per test and deleted after) and, to restart a
broker, a RabbitMQ node of the test's own."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import aio_pika
import pytest
from tests.conftest import wait_for
from tests.connectors.conftest import conn_rabbit_node  # noqa: F401  (fixture)

MACHINE_URL = "amqp://guest:guest@127.0.0.1:5672/"


def amqp_publish(url: str, exchange: str, key: str, payloads: list[bytes]) -> None:
    async def go() -> None:
        connection = await aio_pika.connect(url)
        channel = await connection.channel(publisher_confirms=True)
        ex = await channel.declare_exchange(exchange, "topic", durable=True)
        for i in range(0, len(payloads), 500):
            await asyncio.gather(
                *(ex.publish(aio_pika.Message(p), routing_key=key) for p in payloads[i : i + 500])
            )
        await connection.close()

    asyncio.run(go())


def queue_depth(url: str, queue: str) -> int:
    async def go() -> int:
        connection = await aio_pika.connect(url)
        q = await (await connection.channel()).declare_queue(queue, passive=True)
        await connection.close()
        return q.declaration_result.message_count

    return asyncio.run(go())


def drain_queue(url: str, exchange: str, queue: str, key: str) -> None:
    """Declare a queue that collects what is published with `key`, for reading later."""

    async def go() -> None:
        connection = await aio_pika.connect(url)
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, "topic", durable=True)
        q = await channel.declare_queue(queue, durable=True)
        await q.bind(ex, key)
        await connection.close()

    asyncio.run(go())


def read_queue(url: str, queue: str) -> dict[str, bytes]:
    async def go() -> dict[str, bytes]:
        connection = await aio_pika.connect(url)
        q = await (await connection.channel()).declare_queue(queue, passive=True)
        out: dict[str, bytes] = {}
        while (m := await q.get(fail=False)) is not None:
            out[m.routing_key or ""] = m.body
            await m.ack()
        await connection.close()
        return out

    return asyncio.run(go())


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    """An exchange name of the test's own, and the queues to delete after it: ask for it before
    `make_cluster`, so the cluster is gone (no consumer to declare them again) when they go."""
    tag = uuid.uuid4().hex[:10]
    made = {"exchange": f"fnhub-e2e-{tag}", "queues": []}
    yield made  # type: ignore[misc]

    async def cleanup() -> None:
        connection = await aio_pika.connect(MACHINE_URL)
        for queue in made["queues"]:
            channel = await connection.channel()
            try:
                await channel.queue_delete(queue)
            except Exception:
                pass
        for exchange in (made["exchange"], f"{made['exchange']}-audit"):
            channel = await connection.channel()
            try:
                await channel.exchange_delete(exchange)
            except Exception:
                pass
        await connection.close()

    asyncio.run(cleanup())


def _rabbit(url: str, exchange: str) -> dict:
    return {"type": "rabbitmq", "settings": {"url": url, "exchange": exchange}}


@pytest.mark.timeout(180)
def test_burst_with_a_server_killed_mid_way_loses_nothing(names, make_cluster):
    cluster = make_cluster(
        {"rb": _rabbit(MACHINE_URL, names["exchange"])},
        {
            "burst": {
                "connector": "rb",
                "topics": ["in.#"],
                "function": "handlers.count",
                "window": 200,
                "options": {"queue": f"{names['exchange']}-burst"},
            }
        },
    )
    names["queues"].append(f"{names['exchange']}-burst")
    cluster.set_delay(0.0005)
    cluster.start_worker(processes=2)
    cluster.start_server()
    wait_for(lambda: cluster.connected("burst") == 1, timeout=20)
    n = 10_000
    started = time.monotonic()
    amqp_publish(MACHINE_URL, names["exchange"], "in.a", [f"m{i}".encode() for i in range(n)])
    wait_for(lambda: len(cluster.seen()) > 1500, timeout=60, interval=0.1)
    cluster.kill_server()  # SIGKILL: the broker puts what was not acked back in the queue
    assert len(cluster.seen()) < n
    cluster.start_server()
    wait_for(lambda: len(cluster.seen()) == n, timeout=120, interval=0.5)
    elapsed = time.monotonic() - started
    assert cluster.seen().keys() == {f"m{i}" for i in range(n)}
    # the functions of messages in flight at the kill may all have run already (their tasks
    # were queued); the restarted server still takes them again and acks every one
    wait_for(lambda: queue_depth(MACHINE_URL, f"{names['exchange']}-burst") == 0, timeout=30)
    wait_for(lambda: cluster.connected("burst") == 1, timeout=20)
    [status] = cluster.status("burst")
    assert status["source"]["max_in_flight"] <= 200
    print(f"rabbitmq: {n} messages (with a kill -9 and restart) in {elapsed:.1f}s")


@pytest.mark.timeout(180)
def test_the_subscription_reconnects_after_a_broker_restart(make_cluster, conn_rabbit_node):  # noqa: F811
    node = conn_rabbit_node
    cluster = make_cluster(
        {"rb": _rabbit(node.url, "ex")},
        {"ev": {"connector": "rb", "topics": ["ev.*"], "function": "handlers.count"}},
    )
    cluster.start_worker(processes=1)
    cluster.start_server()
    wait_for(lambda: cluster.connected("ev") == 1, timeout=20)
    amqp_publish(node.url, "ex", "ev.a", [b"before"])
    wait_for(lambda: "before" in cluster.seen(), timeout=20)
    node.ctl("stop_app")
    wait_for(lambda: cluster.connected("ev") == 0, timeout=20)
    node.ctl("start_app")
    wait_for(lambda: cluster.connected("ev") == 1, timeout=40)
    amqp_publish(node.url, "ex", "ev.a", [b"after"])
    wait_for(lambda: "after" in cluster.seen(), timeout=20)
    assert cluster.seen() == {"before": 1, "after": 1}
    assert queue_depth(node.url, "fnhub-ev") == 0


@pytest.mark.timeout(150)
def test_rules_and_scripts_publish_with_confirms(names, make_cluster):
    ex = names["exchange"]
    outputs, audit = f"{ex}-outputs", f"{ex}-audit"
    names["queues"] += [outputs, audit, f"{ex}-rule", f"{ex}-route"]
    drain_queue(MACHINE_URL, ex, outputs, "out.#")
    drain_queue(MACHINE_URL, audit, audit, "#")  # an exchange of its own, named by the target
    cluster = make_cluster(
        {"rb": _rabbit(MACHINE_URL, ex)},
        {
            "rule": {
                "connector": "rb",
                "topics": ["in.*"],
                "function": "handlers.count",
                "options": {"queue": f"{ex}-rule"},
                "publish": {"topic": "out.rule"},
            },
            "route": {
                "connector": "rb",
                "topics": ["raw"],
                "options": {"queue": f"{ex}-route"},
                "publish": {"topic": "out.route", "options": {"exchange": audit}},
            },
        },
    )
    cluster.start_worker(processes=1)
    cluster.start_server()
    wait_for(lambda: cluster.connected("rule") == 1 and cluster.connected("route") == 1, 20)
    amqp_publish(MACHINE_URL, ex, "in.a", [b"hello"])
    amqp_publish(MACHINE_URL, ex, "raw", [b"as is"])
    client = cluster.queue_client()
    try:
        result = client.call(
            "handlers.send", {"connector": "rb", "topic": "out.script", "message": "hi"}
        )
        assert result.status == "success", (result.error_type, result.error_message)
    finally:
        client.close()
    got: dict[str, bytes] = {}
    wait_for(lambda: got.update(read_queue(MACHINE_URL, outputs)) or len(got) == 2, 20)
    assert got == {"out.rule": b'{"topic":"in.a"}', "out.script": b"hi"}
    routed: dict[str, bytes] = {}
    wait_for(lambda: routed.update(read_queue(MACHINE_URL, audit)) or len(routed) == 1, 20)
    assert routed == {"out.route": b"as is"}


@pytest.mark.timeout(150)
def test_multiple_mode_shares_messages_between_servers(names, make_cluster):
    queue = f"{names['exchange']}-shared"
    names["queues"].append(queue)
    cluster = make_cluster(
        {"rb": _rabbit(MACHINE_URL, names["exchange"])},
        {
            "shared": {
                "connector": "rb",
                "topics": ["s.#"],
                "function": "handlers.count",
                "mode": "multiple",
                "options": {"queue": queue},
            }
        },
    )
    cluster.set_delay(0.001)
    cluster.start_worker(processes=2)
    cluster.start_server("n1")
    cluster.start_server("n2")
    wait_for(lambda: cluster.connected("shared") == 2, timeout=20)
    n = 2000
    amqp_publish(MACHINE_URL, names["exchange"], "s.x", [f"m{i}".encode() for i in range(n)])
    wait_for(lambda: len(cluster.seen()) == n, timeout=60, interval=0.3)
    assert set(cluster.seen().values()) == {1}  # each message to one server, once
    wait_for(lambda: sum(s["processed"] for s in cluster.status("shared")) == n, timeout=5)
    per_server = [s["processed"] for s in cluster.status("shared")]
    assert len(per_server) == 2 and min(per_server) > 0, per_server
