"""The cluster bench's Tansu (bench/clusterlib/cluster.py, `tansu_on_s3`) keeps its log in S3:
after a kill -9 and a start its records and a group's committed offsets are back, so the Tansu
restart and kill -9 faults measure fnhub, not Tansu (on `memory://` a restart lost them all and
the fault needed a person)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from bench.clusterlib.cluster import create_bucket, tansu_on_s3, wait_port
from tests.conftest import free_port

TOPIC = "kept"
SENT = 40
COMMITTED = {TopicPartition(TOPIC, 0): 7, TopicPartition(TOPIC, 1): 5}


class Tansu:
    def __init__(self, tmp: Path) -> None:
        self.port, s3_port = free_port(), free_port()
        s3_argv, self.argv, self.env = tansu_on_s3("127.0.0.1", self.port, s3_port)
        self.log = tmp / "tansu.log"
        with (tmp / "s3.log").open("ab") as out:
            self.s3 = subprocess.Popen(s3_argv, stdout=out, stderr=subprocess.STDOUT)
        wait_port("127.0.0.1", s3_port)
        create_bucket(self.env["AWS_ENDPOINT"])
        self.proc = self.start()

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        wait_port("127.0.0.1", self.port)
        return proc

    def kill9_and_start(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = self.start()

    def stop(self) -> None:
        for proc in (self.proc, self.s3):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[Tansu]:
    broker = Tansu(tmp_path)
    yield broker
    broker.stop()


async def _read_all(bootstrap: str, group: str) -> list[tuple[int, int, bytes]]:
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=1000,
        heartbeat_interval_ms=300,
    )
    await consumer.start()
    got: list[tuple[int, int, bytes]] = []
    try:
        while len(got) < SENT:
            batches = await consumer.getmany(timeout_ms=10000)
            if not batches:
                break
            got += [(m.partition, m.offset, m.value or b"") for ms in batches.values() for m in ms]
        if group == "committer":
            await consumer.commit(COMMITTED)
    finally:
        await consumer.stop()
    return sorted(got)


async def test_records_and_committed_offsets_outlive_a_kill_9(tansu: Tansu) -> None:
    bootstrap = f"127.0.0.1:{tansu.port}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(SENT):
            await producer.send_and_wait(TOPIC, f"m{n}".encode(), partition=n % 2)
    finally:
        await producer.stop()
    before = await _read_all(bootstrap, "committer")
    assert len(before) == SENT

    tansu.kill9_and_start()

    assert await _read_all(bootstrap, "fresh") == before
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # partitions= given: without it aiokafka's request breaks Tansu's connection
        offsets = await admin.list_consumer_group_offsets("committer", partitions=list(COMMITTED))
    finally:
        await admin.close()
    assert {tp: o.offset for tp, o in offsets.items()} == COMMITTED
