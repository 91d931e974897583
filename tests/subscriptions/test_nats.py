"""NATS JetStream subscriptions end to end: real `fnhub server` and `fnhub worker` processes,
the machine's NATS (4222, streams named per test and deleted after) and, to restart a broker,
a nats-server of the test's own."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import nats
import pytest
from nats.js.api import StreamConfig
from tests.conftest import wait_for

MACHINE_NATS = 4222


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def _js(port: int):  # type: ignore[no-untyped-def]
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    return nc, nc.jetstream()


def add_stream(port: int, name: str, subjects: list[str]) -> None:
    async def go() -> None:
        nc, js = await _js(port)
        await js.add_stream(StreamConfig(name=name, subjects=subjects))
        await nc.close()

    _run(go())


def delete_stream(port: int, name: str) -> None:
    async def go() -> None:
        nc, js = await _js(port)
        try:
            await js.delete_stream(name)
        finally:
            await nc.close()

    _run(go())


def js_publish(port: int, subject: str, payloads: list[bytes]) -> None:
    async def go() -> None:
        nc, js = await _js(port)
        for i in range(0, len(payloads), 500):
            await asyncio.gather(*(js.publish(subject, p) for p in payloads[i : i + 500]))
        await nc.close()

    _run(go())


def stream_messages(port: int, stream: str) -> list[tuple[str, bytes]]:
    async def go() -> list[tuple[str, bytes]]:
        nc, js = await _js(port)
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            m = await js.get_msg(stream, seq)
            out.append((m.subject, m.data))
        await nc.close()
        return out

    return _run(go())


def consumer_left(port: int, stream: str, durable: str) -> tuple[int, int]:
    """(not yet delivered, delivered and not acked) of the durable consumer."""

    async def go() -> tuple[int, int]:
        nc, js = await _js(port)
        info = await js.consumer_info(stream, durable)
        await nc.close()
        return info.num_pending, info.num_ack_pending

    return _run(go())


@pytest.fixture
def stream_name() -> Iterator[str]:
    name = f"T{uuid.uuid4().hex[:10].upper()}"
    yield name
    try:
        delete_stream(MACHINE_NATS, name)
    except Exception:
        pass


def _nats(port: int) -> dict:
    return {"type": "nats", "settings": {"servers": f"nats://127.0.0.1:{port}"}}


@pytest.mark.timeout(180)
def test_burst_with_a_server_killed_mid_way_loses_nothing(stream_name, make_cluster):
    subject = f"{stream_name.lower()}.in"
    add_stream(MACHINE_NATS, stream_name, [f"{stream_name.lower()}.>"])
    cluster = make_cluster(
        {"nt": _nats(MACHINE_NATS)},
        {
            "burst": {
                "connector": "nt",
                "topics": [f"{stream_name.lower()}.>"],
                "function": "handlers.count",
                "window": 200,
                "options": {"ack_wait": 3},
            }
        },
    )
    n = 10_000
    js_publish(MACHINE_NATS, subject, [f"m{i}".encode() for i in range(n)])
    cluster.set_delay(0.0005)
    cluster.start_worker(processes=2)
    started = time.monotonic()
    cluster.start_server()
    wait_for(lambda: len(cluster.seen()) > 1500, timeout=60, interval=0.1)
    cluster.kill_server()  # SIGKILL: up to a window of messages were never acked
    assert len(cluster.seen()) < n
    cluster.start_server()
    wait_for(lambda: len(cluster.seen()) == n, timeout=120, interval=0.5)
    elapsed = time.monotonic() - started
    assert cluster.seen().keys() == {f"m{i}" for i in range(n)}
    # every message acked once its function finished: nothing left for the durable consumer
    # (those in flight at the kill come back after ack_wait, to the restarted server)
    wait_for(lambda: consumer_left(MACHINE_NATS, stream_name, "fnhub-burst") == (0, 0), 30)
    wait_for(lambda: cluster.connected("burst") == 1, timeout=20)
    [status] = cluster.status("burst")
    assert status["source"]["max_in_flight"] <= 200
    print(f"nats: {n} messages (with a kill -9 and restart) in {elapsed:.1f}s")


@pytest.mark.timeout(150)
def test_the_subscription_reconnects_after_a_broker_restart(make_cluster, conn_broker_factory):
    broker = conn_broker_factory("nats")
    add_stream(broker.port, "EV", ["ev.>"])
    cluster = make_cluster(
        {"nt": _nats(broker.port)},
        {"ev": {"connector": "nt", "topics": ["ev.*"], "function": "handlers.count"}},
    )
    cluster.start_worker(processes=1)
    cluster.start_server()
    wait_for(lambda: cluster.connected("ev") == 1, timeout=20)
    js_publish(broker.port, "ev.a", [b"before"])
    wait_for(lambda: "before" in cluster.seen(), timeout=20)
    broker.stop()
    wait_for(lambda: cluster.connected("ev") == 0, timeout=20)
    broker.start()
    wait_for(lambda: cluster.connected("ev") == 1, timeout=30)
    js_publish(broker.port, "ev.a", [b"after"])
    wait_for(lambda: "after" in cluster.seen(), timeout=20)
    assert cluster.seen() == {"before": 1, "after": 1}
    assert consumer_left(broker.port, "EV", "fnhub-ev") == (0, 0)


@pytest.mark.timeout(150)
def test_rules_and_scripts_publish_to_jetstream(stream_name, make_cluster):
    low = stream_name.lower()
    add_stream(MACHINE_NATS, stream_name, [f"{low}.>"])
    cluster = make_cluster(
        {"nt": _nats(MACHINE_NATS)},
        {
            "rule": {
                "connector": "nt",
                "topics": [f"{low}.in.*"],
                "function": "handlers.count",
                "publish": {"topic": f"{low}.out.rule"},
            },
            "route": {  # a rule without a function forwards as it is
                "connector": "nt",
                "topics": [f"{low}.raw"],
                "publish": {"topic": f"{low}.out.route"},
            },
        },
    )
    cluster.start_worker(processes=1)
    cluster.start_server()
    wait_for(lambda: cluster.connected("rule") == 1 and cluster.connected("route") == 1, 20)
    js_publish(MACHINE_NATS, f"{low}.in.a", [b"hello"])
    js_publish(MACHINE_NATS, f"{low}.raw", [b"as is"])
    client = cluster.queue_client()
    try:
        result = client.call(
            "handlers.send", {"connector": "nt", "topic": f"{low}.out.script", "message": "hi"}
        )
        assert result.status == "success", (result.error_type, result.error_message)
    finally:
        client.close()

    def outputs() -> dict[str, bytes]:
        return {s: d for s, d in stream_messages(MACHINE_NATS, stream_name) if ".out." in s}

    wait_for(lambda: len(outputs()) == 3, timeout=20)
    assert outputs() == {
        f"{low}.out.rule": f'{{"topic":"{low}.in.a"}}'.encode(),
        f"{low}.out.route": b"as is",
        f"{low}.out.script": b"hi",
    }


@pytest.mark.timeout(150)
def test_multiple_mode_shares_messages_between_servers(stream_name, make_cluster):
    low = stream_name.lower()
    add_stream(MACHINE_NATS, stream_name, [f"{low}.>"])
    cluster = make_cluster(
        {"nt": _nats(MACHINE_NATS)},
        {
            "shared": {
                "connector": "nt",
                "topics": [f"{low}.>"],
                "function": "handlers.count",
                "mode": "multiple",
            }
        },
    )
    cluster.set_delay(0.001)
    cluster.start_worker(processes=2)
    cluster.start_server("n1")
    cluster.start_server("n2")
    wait_for(lambda: cluster.connected("shared") == 2, timeout=20)
    n = 2000
    js_publish(MACHINE_NATS, f"{low}.x", [f"m{i}".encode() for i in range(n)])
    wait_for(lambda: len(cluster.seen()) == n, timeout=60, interval=0.3)
    assert set(cluster.seen().values()) == {1}  # each message to one server, once
    wait_for(lambda: sum(s["processed"] for s in cluster.status("shared")) == n, timeout=5)
    per_server = [s["processed"] for s in cluster.status("shared")]
    assert len(per_server) == 2 and min(per_server) > 0, per_server
