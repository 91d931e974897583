"""The Kafka part of the direct path alone: CPU per message of a worker child's consumer
(`KafkaDirectConsumer.read` + `ack`, one commit per batch) against a bare single-threaded
aiokafka getmany loop (same batch size, one commit per batch), in the same run on one Tansu.

    python bench/kafka_direct_consumer.py --messages 20000 --rounds 3 [--headers]

Both read the same topic (4 partitions) under their own group; the CPU is this process's
(user + system, every thread), so the loop thread of the direct consumer counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.subscribe import _free_port, _wait_port, kafka_send  # noqa: E402
from tests.connectors.conftest import tansu_argv  # noqa: E402

BATCH = 500


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def publish(port: int, topic: str, n: int, headers: bool) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        await admin.start()
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
        await admin.close()
        hs = [("trace", b"abc"), ("kind", b"x")] if headers else None
        await kafka_send(port, topic, n, keyed=True, headers=hs)

    asyncio.run(run())


def bare(port: int, topic: str, n: int) -> float:
    """CPU µs/msg of a single-threaded getmany loop, one commit per batch."""
    from aiokafka import AIOKafkaConsumer

    async def run() -> float:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=f"127.0.0.1:{port}",
            group_id=f"bare-{uuid.uuid4().hex[:6]}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        done, cpu0 = 0, None
        while done < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=BATCH)
            cpu0 = cpu0 if cpu0 is not None else _cpu()
            offsets = {}
            for tp, records in batch.items():
                for r in records:
                    _ = r.value
                offsets[tp] = records[-1].offset + 1
                done += len(records)
            if offsets:
                await consumer.commit(offsets)
        cpu = _cpu() - (cpu0 or 0)
        await consumer.stop()
        return cpu / n * 1e6

    return asyncio.run(run())


def direct(port: int, topic: str, n: int, manual: bool) -> float:
    """CPU µs/msg of KafkaDirectConsumer: read(BATCH) + ack(batch), as a worker child does."""
    from fnhub.connectors.base import DirectPlace
    from fnhub.connectors.kafka.direct import KafkaDirectConsumer
    from fnhub.connectors.kafka.settings import KafkaSettings, KafkaSourceOptions

    options = KafkaSourceOptions(assignment="manual" if manual else "group")
    c = KafkaDirectConsumer(
        KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}"),
        topics=[topic],
        group=f"direct-{uuid.uuid4().hex[:6]}",
        consumer="bench",
        options=options,
        place=DirectPlace(mode="single" if manual else "multiple"),
    )
    c.open()
    done, cpu0 = 0, None
    try:
        while done < n:
            msgs = c.read(BATCH, 500)
            cpu0 = cpu0 if cpu0 is not None else _cpu()
            if msgs:
                c.ack(msgs)
            done += len(msgs)
        return (_cpu() - (cpu0 or 0)) / n * 1e6
    finally:
        c.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--headers", action="store_true")
    args = ap.parse_args()
    port = _free_port()
    proc = subprocess.Popen(tansu_argv(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        for r in range(args.rounds):
            topic = f"kdc-{uuid.uuid4().hex[:6]}"
            publish(port, topic, args.messages, args.headers)
            b = bare(port, topic, args.messages)
            g = direct(port, topic, args.messages, manual=False)
            m = direct(port, topic, args.messages, manual=True)
            print(
                f"round {r + 1}: bare {b:.1f} us/msg  direct(group) {g:.1f} us/msg "
                f"({g / b:.2f}x)  direct(manual) {m:.1f} us/msg ({m / b:.2f}x)",
                flush=True,
            )
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
