"""How long a Kafka subscription takes to its first message and to resume after its holder is
killed: one measurement, shared by the test (generous bounds) and bench/kafka_failover.py
(the figures)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import threading
import time
from dataclasses import dataclass, field

from tests.conftest import wait_for
from tests.subscriptions.conftest import Cluster

from fnhub.holders import QUIET_SECONDS


class Producer(threading.Thread):
    """Sends `p<i>` to `topic` every `interval` seconds, each acknowledged before the next;
    `sent` holds (i, when it was acknowledged) in order."""

    def __init__(self, port: int, topic: str, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.topic = topic
        self.interval = interval
        self.sent: list[tuple[int, float]] = []
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # the caller's assertions show it
            self.error = exc

    async def _run(self) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{self.port}", acks="all")
        await producer.start()
        try:
            i = 0
            while not self._halt.is_set():
                await producer.send_and_wait(self.topic, f"p{i}".encode())
                self.sent.append((i, time.monotonic()))
                i += 1
                await asyncio.sleep(self.interval)
        finally:
            await producer.stop()

    def finish(self) -> list[str]:
        """Stop sending; every message sent."""
        self._halt.set()
        self.join(10)
        assert self.error is None, self.error
        return [f"p{i}" for i, _ in self.sent]


@dataclass
class Timings:
    first_message: float  # the server started the subscription → first message handled
    startup: float  # the server's process started → answering /healthz
    failover: float  # holder killed → every message sent in the next 0.2 s handled
    lost: list[str] = field(default_factory=list)


def _reading(cluster: Cluster, name: str) -> list[dict] | None:
    """The views of the servers subscribed, once each has partitions (its lag is measured)."""
    subscribed = [s for s in cluster.status(name) if s.get("subscribed")]
    if subscribed and all((s.get("source") or {}).get("lag") is not None for s in subscribed):
        return subscribed
    return None


def started_at(cluster: Cluster, node: str, name: str) -> float:
    """When `node`'s server started subscription `name` (epoch seconds, from its log line)."""
    wanted = f"subscription {name} started"
    for line in cluster.log(f"server-{node}.log").splitlines():
        if wanted in line:
            stamp = " ".join(line.split(" ", 2)[:2])  # `2026-12-06 20:05:21,123`: local time
            return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    raise AssertionError(f"no {wanted!r} in the log of {node}")


def measure(cluster: Cluster, port: int, name: str, topic: str) -> Timings:
    """`cluster` has a subscription `name` on `topic` and nothing running. Starts a worker,
    then server n1 (timing its first message from the subscription's start) and n2; keeps
    producing, kills -9 the subscribed server connected longest and times the resumption."""
    from tests.subscriptions.test_mqtt_kafka import kafka_publish

    kafka_publish(port, topic, [b"before"])  # the topic exists, with a message waiting
    cluster.start_worker(processes=2)
    cluster.queue_client().close()  # a worker listens
    spawned = time.monotonic()
    cluster.start_server("n1")
    startup = time.monotonic() - spawned
    wait_for(lambda: "before" in cluster.seen(), timeout=60, interval=0.02)
    first = time.time() - started_at(cluster, "n1", name)
    cluster.start_server("n2")
    n2_up = time.monotonic()
    wait_for(lambda: len(cluster.status(name)) == 2, timeout=20)
    producer = Producer(port, topic)
    producer.start()
    wait_for(lambda: len(producer.sent) > 20, timeout=20)
    # every subscribed server reads partitions (a group has finished its rebalance)
    subscribed = wait_for(lambda: _reading(cluster, name), timeout=60)
    victim = min(subscribed, key=lambda s: (s.get("source") or {}).get("connected_since") or 0)
    # the survivor as a long-running server would be: its Redis connections old enough to
    # judge a dead lease holder (`fnhub.holders`)
    time.sleep(max(0.0, n2_up + QUIET_SECONDS + 1 - time.monotonic()))
    killed = time.monotonic()
    cluster.kill_server(victim["node"])
    time.sleep(0.25)
    probe = [f"p{i}" for i, at in producer.sent if killed < at <= killed + 0.2]
    assert probe, "nothing was sent after the kill"
    wait_for(lambda: set(probe) <= cluster.seen().keys(), timeout=90, interval=0.02)
    failover = time.monotonic() - killed
    time.sleep(0.5)
    sent = producer.finish()
    with contextlib.suppress(AssertionError):  # what is still missing then is lost
        wait_for(lambda: set(sent) <= cluster.seen().keys(), timeout=60, interval=0.2)
    lost = sorted(set(sent) - cluster.seen().keys())
    return Timings(first, startup, failover, lost)
