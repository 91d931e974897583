"""How long a Kafka subscription takes to its first message and to resume after its holder is
killed: one measurement, shared by the test (generous bounds) and bench/kafka_failover.py
(the figures)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field

from tests.conftest import wait_for
from tests.subscriptions.conftest import Cluster


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
    first_message: float  # server healthy → first message handled
    failover: float  # holder killed → every message sent in the next 0.2 s handled
    lost: list[str] = field(default_factory=list)


def measure(cluster: Cluster, port: int, name: str, topic: str) -> Timings:
    """`cluster` has a subscription `name` on `topic` and nothing running. Starts a worker
    and server n1 (timing the first message), server n2, keeps producing, kills -9 the
    subscribed server with the oldest connection and times the resumption."""
    from tests.subscriptions.test_mqtt_kafka import kafka_publish

    kafka_publish(port, topic, [b"before"])  # the topic exists, with a message waiting
    cluster.start_worker(processes=2)
    cluster.queue_client().close()  # a worker listens
    cluster.start_server("n1")
    healthy = time.monotonic()
    wait_for(lambda: "before" in cluster.seen(), timeout=60, interval=0.02)
    first = time.monotonic() - healthy
    cluster.start_server("n2")
    wait_for(lambda: len(cluster.status(name)) == 2, timeout=20)
    producer = Producer(port, topic)
    producer.start()
    wait_for(lambda: len(producer.sent) > 20, timeout=20)
    time.sleep(1.0)  # both servers settled (a group has rebalanced)
    subscribed = [s for s in cluster.status(name) if s.get("subscribed")]
    victim = min(subscribed, key=lambda s: (s.get("source") or {}).get("connected_since") or 0)
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
    return Timings(first, failover, lost)
