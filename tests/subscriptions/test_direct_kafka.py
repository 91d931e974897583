"""`path: direct` on Kafka (Tansu), end to end: worker children read the topic themselves and
commit a settled batch at a time. No server runs: a direct subscription needs none."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tests.conftest import wait_for
from tests.subscriptions.test_direct_path import (
    HANG,
    _check_records_and_views,
    _direct_children,
    _records,
    _wait_children,
    fail_over_single_mode,
)

T = TypeVar("T")


class Kafka:
    """A client of the test's Tansu on a private event loop: topics, producing, and the
    group's committed offsets."""

    def __init__(self, port: int) -> None:
        self.servers = f"127.0.0.1:{port}"
        self.loop = asyncio.new_event_loop()
        self.watcher: AIOKafkaConsumer | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def create(self, topic: str, partitions: int) -> None:
        async def go() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.servers)
            await admin.start()
            try:
                await admin.create_topics([NewTopic(topic, partitions, 1)])
            finally:
                await admin.close()

        self.run(go())

    def produce(self, topic: str, messages: list[str]) -> dict[tuple[int, int], str]:
        """Send and wait for every ack: (partition, offset) → message."""

        async def go() -> dict[tuple[int, int], str]:
            producer = AIOKafkaProducer(bootstrap_servers=self.servers, linger_ms=5)
            await producer.start()
            try:
                futures = [
                    await producer.send(topic, m.encode(), key=str(i).encode())
                    for i, m in enumerate(messages)
                ]
                metas = await asyncio.gather(*futures)
            finally:
                await producer.stop()
            return {(md.partition, md.offset): m for md, m in zip(metas, messages, strict=True)}

        return self.run(go())

    def committed(self, group: str, topic: str, partitions: int) -> dict[int, int]:
        """The group's committed offset per partition (absent: nothing committed)."""

        async def go() -> dict[int, int]:
            if self.watcher is None:
                self.watcher = AIOKafkaConsumer(bootstrap_servers=self.servers, group_id=group)
                await self.watcher.start()
            out = {}
            for p in range(partitions):
                offset = await self.watcher.committed(TopicPartition(topic, p))
                if offset is not None:
                    out[p] = offset
            return out

        return self.run(go())

    def close(self) -> None:
        if self.watcher is not None:
            self.run(self.watcher.stop())
        self.loop.close()


@pytest.fixture
def kafka(conn_broker_factory):
    client = Kafka(conn_broker_factory("tansu").port)
    yield client
    client.close()


def _subscription(port: int, topic: str, **extra: object) -> tuple[dict, dict]:
    connectors = {"log": {"type": "kafka", "settings": {"bootstrap_servers": f"127.0.0.1:{port}"}}}
    subscription = {
        "connector": "log",
        "topics": [topic],
        "function": "handlers.count",
        "window": 50,
        "options": {"session_timeout_ms": 3000, "heartbeat_interval_ms": 1000},
        "path": "direct",
        "record_limit": 100_000,
        **extra,
    }
    return connectors, subscription


def _cluster(make_cluster, kafka: Kafka, name: str, partitions: int, **extra: object):
    """A new topic of `partitions` partitions and a project subscribing `name` to it."""
    topic = f"in-{time.time_ns()}"
    kafka.create(topic, partitions)
    port = int(kafka.servers.rsplit(":", 1)[1])
    connectors, subscription = _subscription(port, topic, **extra)
    scripts = {"hang": HANG} if extra.get("function") == "hang.hang" else None
    return topic, make_cluster(connectors, {name: subscription}, extra_scripts=scripts)


def _ends(where: dict[tuple[int, int], str], partitions: int) -> dict[int, int]:
    """Each partition's offset past its last message: what the group commits in the end."""
    return {p: 1 + max(o for (q, o) in where if q == p) for p in range(partitions)}


def _handled_below_commits(
    kafka: Kafka, group: str, topic: str, partitions: int, where: dict[tuple[int, int], str], seen
) -> int:
    """Every message below a committed offset was handled before (the commit comes after the
    function): the number of committed messages."""
    committed = kafka.committed(group, topic, partitions)
    seen_now = seen()
    below = [m for (p, o), m in where.items() if o < committed.get(p, 0)]
    missing = [m for m in below if m not in seen_now]
    assert not missing, f"committed before handled: {missing[:5]}"
    return len(below)


@pytest.mark.timeout(240)
def test_direct_kafka_handles_commits_after_done_records_and_status(make_cluster, kafka):
    topic, cluster = _cluster(make_cluster, kafka, "direct", 4)
    cluster.set_delay(0.02)  # slow enough to catch messages in flight
    cluster.start_worker(processes=2)
    _wait_children(cluster, "direct", 2)
    n = 600
    messages = [f"m{i}" for i in range(n)]
    where = kafka.produce(topic, messages)
    samples = 0
    while len(cluster.seen()) < n:
        committed = _handled_below_commits(kafka, "fnhub-direct", topic, 4, where, cluster.seen)
        samples += 1 + (0 < committed < n)
        time.sleep(0.05)
    assert samples > 5
    assert cluster.seen() == dict.fromkeys(messages, 1)
    ends = _ends(where, 4)
    wait_for(lambda: kafka.committed("fnhub-direct", topic, 4) == ends, timeout=10)
    _check_records_and_views(cluster, "direct", n, share=25)  # 50 / 2
    # single mode: each child read its own partitions (none read twice)
    assert sum(v["source"]["received"] for v in cluster.status("direct")) == n


@pytest.mark.timeout(270)
def test_direct_kafka_child_killed_mid_burst_loses_nothing(make_cluster, kafka):
    topic, cluster = _cluster(make_cluster, kafka, "burst", 4)
    cluster.set_delay(0.002)
    cluster.start_worker(processes=2)
    _wait_children(cluster, "burst", 2)
    n = 3000
    messages = [f"m{i}" for i in range(n)]
    where = kafka.produce(topic, messages)
    wait_for(lambda: len(cluster.seen()) > 300, timeout=60, interval=0.05)
    victim = _direct_children(cluster, "burst")[0]
    os.kill(victim, signal.SIGKILL)
    assert len(cluster.seen()) < n
    wait_for(lambda: len(cluster.seen()) == n, timeout=90, interval=0.3)
    assert cluster.seen().keys() == set(messages)
    ends = _ends(where, 4)
    wait_for(lambda: kafka.committed("fnhub-burst", topic, 4) == ends, timeout=20)
    wait_for(lambda: victim not in _direct_children(cluster, "burst"), timeout=10)
    wait_for(lambda: len(_direct_children(cluster, "burst")) == 2, timeout=60, interval=0.2)


@pytest.mark.timeout(240)
def test_direct_kafka_timeout_kills_the_child_and_the_rest_is_redelivered(make_cluster, kafka):
    # one partition: the stuck message first, the rest behind it
    topic, cluster = _cluster(make_cluster, kafka, "hung", 1, function="hang.hang")
    cluster.start_worker(processes=1)
    _wait_children(cluster, "hung", 1)
    [before] = _direct_children(cluster, "hung")
    messages = ["stuck", *(f"m{i}" for i in range(20))]
    kafka.produce(topic, messages)
    wait_for(lambda: len(cluster.seen()) == 20, timeout=120, interval=0.2)
    raw = cluster.redis.hgetall(f"{cluster.prefix}:cache:ctl:runs")
    runs = {k.decode(): int(v) for k, v in raw.items()}
    assert runs["stuck"] == 1, "a timed-out message is final, not run again"
    assert cluster.seen().keys() == set(messages[1:])
    wait_for(lambda: kafka.committed("fnhub-hung", topic, 1) == {0: 21}, timeout=10)
    # the child past its deadline was killed and replaced (its view goes stale in 3 s)
    wait_for(lambda: len(set(_direct_children(cluster, "hung")) - {before}) == 1, timeout=10)
    wait_for(lambda: before not in _direct_children(cluster, "hung"), timeout=10)
    wait_for(lambda: "timeout" in _records(cluster, "hung").values(), timeout=30, interval=0.3)
    statuses = list(_records(cluster, "hung").values())
    assert statuses.count("timeout") == 1
    assert statuses.count("success") == 20


@pytest.mark.timeout(240)
def test_direct_kafka_multiple_mode_children_share_the_group(make_cluster, kafka):
    topic, cluster = _cluster(make_cluster, kafka, "many", 4, mode="multiple")
    cluster.start_worker(processes=2)
    _wait_children(cluster, "many", 2)
    n = 1000
    messages = [f"m{i}" for i in range(n)]
    where = kafka.produce(topic, messages)
    wait_for(lambda: len(cluster.seen()) == n, timeout=90, interval=0.2)
    assert cluster.seen().keys() == set(messages)
    ends = _ends(where, 4)
    wait_for(lambda: kafka.committed("fnhub-many", topic, 4) == ends, timeout=20)
    wait_for(lambda: len(_records(cluster, "many")) == n, timeout=30, interval=0.3)
    assert set(_records(cluster, "many").values()) == {"success"}


@pytest.mark.timeout(270)
def test_direct_kafka_single_mode_fails_over_to_another_worker(make_cluster, kafka):
    topic, cluster = _cluster(make_cluster, kafka, "one", 4, mode="single")
    fail_over_single_mode(
        cluster,
        "one",
        lambda messages: kafka.produce(topic, messages),
        lambda where: wait_for(
            lambda: kafka.committed("fnhub-one", topic, 4) == _ends(where, 4), timeout=20
        ),
    )


@pytest.mark.timeout(240)
def test_direct_kafka_status_shows_the_cluster_gone_and_back(make_cluster, conn_broker_factory):
    broker = conn_broker_factory("tansu")
    kafka = Kafka(broker.port)
    try:
        # multiple mode: a group member, whose reads do not look at the cluster's metadata
        # (single mode's manual assignment does, every 3 s)
        topic, cluster = _cluster(make_cluster, kafka, "away", 2, mode="multiple")
        cluster.start_worker(processes=1)
        _wait_children(cluster, "away", 1)
        kafka.produce(topic, ["before"])
        wait_for(lambda: cluster.seen() == {"before": 1}, timeout=60, interval=0.2)
        kafka.close()
        broker.stop()

        def state() -> str | None:
            views = cluster.status("away")
            return views[0]["source"]["state"] if views else None

        wait_for(lambda: state() == "reconnecting", timeout=30, interval=0.2)
        [view] = cluster.status("away")
        assert "kafka 127.0.0.1" in view["source"]["last_error"]
        broker.start()  # memory storage: the topic comes back empty when written again
        wait_for(lambda: state() == "connected", timeout=60, interval=0.2)
        kafka = Kafka(broker.port)
        kafka.produce(topic, ["after"])
        wait_for(lambda: cluster.seen() == {"before": 1, "after": 1}, timeout=60, interval=0.2)
    finally:
        kafka.close()


def _lease_holders(cluster, name: str, topic: str, partitions: int) -> dict[int, int | None]:
    """Partition → pid of the child holding its lease (`<worker>.d<k>.<pid>/<run>`)."""
    out: dict[int, int | None] = {}
    for p in range(partitions):
        holder = cluster.redis.get(f"{cluster.prefix}:subs:share:{name}:{topic}:{p}")
        out[p] = int(holder.decode().split("/")[0].rsplit(".", 1)[1]) if holder else None
    return out


@pytest.mark.timeout(240)
def test_direct_kafka_multiple_mode_children_split_the_leases_and_survive_a_kill(
    make_cluster, kafka
):
    """`multiple` mode's default `assignment: lease`: the two children hold 2 of 4 partitions
    each; after a kill -9 of one, the other reads its partitions once their leases lapsed
    (and the replacement child takes its share back): nothing lost, well within 10 s."""
    topic, cluster = _cluster(make_cluster, kafka, "split", 4, mode="multiple")
    cluster.start_worker(processes=2)
    _wait_children(cluster, "split", 2)
    children = set(_direct_children(cluster, "split"))
    wait_for(
        lambda: (
            Counter(_lease_holders(cluster, "split", topic, 4).values())
            == dict.fromkeys(children, 2)
        ),
        timeout=30,
    )
    victim = _direct_children(cluster, "split")[0]
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    messages = [f"m{i}" for i in range(200)]
    where = kafka.produce(topic, messages)
    wait_for(lambda: cluster.seen().keys() == set(messages), timeout=60, interval=0.1)
    took = time.monotonic() - killed
    print(f"kafka direct multiple mode: every message after the kill handled in {took:.2f}s")
    assert took < 10, took
    wait_for(lambda: kafka.committed("fnhub-split", topic, 4) == _ends(where, 4), timeout=20)
    holders = _lease_holders(cluster, "split", topic, 4)
    assert victim not in holders.values()
