"""MQTT 5 (QoS 1) and Kafka subscriptions end to end, through real workers and servers."""

from __future__ import annotations

import asyncio
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from tests.conftest import REDIS_URL, wait_for

from fnhub.calling.queue_client import QueueClient
from fnhub.config import Settings
from fnhub.holders import QUIET_SECONDS


def mqtt_publish(port: int, topic: str, payloads: list[bytes], qos: int = 1) -> None:
    """Publish every payload and wait for every PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, p, qos=qos) for p in payloads]
    for info in infos:
        info.wait_for_publish(30)
    client.loop_stop()
    client.disconnect()


def kafka_publish(port: int, topic: str, payloads: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{port}", linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send(topic, p) for p in payloads]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def _mqtt(broker, **extra) -> dict:
    return {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": broker.port}, **extra}


def _kafka(broker) -> dict:
    return {"type": "kafka", "settings": {"bootstrap_servers": f"127.0.0.1:{broker.port}"}}


KAFKA_OPTIONS = {"start": "earliest", "session_timeout_ms": 3000, "heartbeat_interval_ms": 1000}


@pytest.mark.timeout(150)
def test_mqtt_qos1_burst_into_slow_handler(make_cluster, conn_broker_factory):
    broker = conn_broker_factory("mosquitto")
    cluster = make_cluster(
        {"mq": _mqtt(broker)},
        {
            "burst": {
                "connector": "mq",
                "topics": ["burst/#"],
                "function": "handlers.count",
                "window": 200,
                "options": {"qos": 1},
            }
        },
    )
    cluster.set_delay(0.0005)
    cluster.start_worker(processes=2)
    cluster.start_server()
    wait_for(lambda: cluster.connected("burst") >= 1, timeout=20)
    n = 20_000
    started = time.monotonic()
    mqtt_publish(broker.port, "burst/a", [f"m{i}".encode() for i in range(n)])
    wait_for(lambda: len(cluster.seen()) == n, timeout=120, interval=0.5)
    elapsed = time.monotonic() - started
    seen = cluster.seen()
    assert set(seen.values()) == {1}
    [status] = cluster.status("burst")
    assert status["source"]["max_in_flight"] <= 200
    print(f"mqtt qos1: {n} messages in {elapsed:.1f}s = {n / elapsed:.0f}/s")


@pytest.mark.timeout(150)
def test_mqtt_server_killed_mid_burst_resumes_the_session(make_cluster, conn_broker_factory):
    broker = conn_broker_factory("mosquitto")
    cluster = make_cluster(
        {"mq": _mqtt(broker)},
        {
            "resume": {
                "connector": "mq",
                "topics": ["r/#"],
                "function": "handlers.count",
                "window": 50,
                "options": {"qos": 1},
            }
        },
    )
    cluster.set_delay(0.002)
    cluster.start_worker(processes=2)
    cluster.start_server()
    wait_for(lambda: cluster.connected("resume") >= 1, timeout=20)
    n = 3000
    mqtt_publish(broker.port, "r/x", [f"m{i}".encode() for i in range(n)])
    wait_for(lambda: len(cluster.seen()) > 300, timeout=60, interval=0.2)
    cluster.kill_server()
    assert len(cluster.seen()) < n
    cluster.start_server()
    wait_for(lambda: len(cluster.seen()) == n, timeout=120, interval=0.5)
    assert cluster.seen().keys() == {f"m{i}" for i in range(n)}


@pytest.mark.timeout(150)
def test_kafka_burst_and_kill_restart(make_cluster, conn_broker_factory):
    broker = conn_broker_factory("tansu")
    cluster = make_cluster(
        {"kf": _kafka(broker)},
        {
            "burst": {
                "connector": "kf",
                "topics": ["events"],
                "function": "handlers.count",
                "window": 200,
                "options": KAFKA_OPTIONS,
            }
        },
    )
    n = 20_000
    kafka_publish(broker.port, "events", [f"m{i}".encode() for i in range(n)])
    cluster.set_delay(0.0005)
    cluster.start_worker(processes=2)
    started = time.monotonic()
    cluster.start_server()
    wait_for(lambda: len(cluster.seen()) > 2000, timeout=60, interval=0.2)
    cluster.kill_server()
    cluster.start_server()
    wait_for(lambda: len(cluster.seen()) == n, timeout=120, interval=0.5)
    elapsed = time.monotonic() - started
    assert cluster.seen().keys() == {f"m{i}" for i in range(n)}
    print(f"kafka: {n} messages (with a kill -9 and restart) in {elapsed:.1f}s")


@pytest.mark.timeout(120)
def test_single_mode_fails_over_to_another_server(make_cluster, conn_broker_factory):
    broker = conn_broker_factory("mosquitto")
    cluster = make_cluster(
        {"mq": _mqtt(broker)},
        {
            "one": {
                "connector": "mq",
                "topics": ["f/#"],
                "function": "handlers.count",
                "mode": "single",
                "options": {"qos": 1},
            }
        },
    )
    cluster.start_worker(processes=2)
    cluster.start_server("n1")
    cluster.start_server("n2")

    def holder() -> str | None:
        views = [s for s in cluster.status("one") if s.get("subscribed")]
        return views[0]["node"] if len(views) == 1 else None

    first = wait_for(holder, timeout=20)
    stop = threading.Event()
    sent: list[str] = []

    def keep_publishing() -> None:
        i = 0
        while not stop.is_set():
            mqtt_publish(broker.port, "f/x", [f"m{i}".encode()])
            sent.append(f"m{i}")
            i += 1
            time.sleep(0.02)

    thread = threading.Thread(target=keep_publishing)
    thread.start()
    time.sleep(QUIET_SECONDS)  # the standby's connections old enough to judge (fnhub.holders)
    key = f"{cluster.prefix}:subs:lease:one"
    old = cluster.redis.get(key)
    killed_at = time.monotonic()
    cluster.kill_server(first)
    (seconds, micros), left = cluster.redis.pipeline().time().pttl(key).execute()
    lapse = seconds * 1000 + micros // 1000 + left  # Redis's clock, ms
    wait_for(lambda: cluster.redis.get(key) not in (None, old), timeout=10, interval=0.02)
    seconds, micros = cluster.redis.time()
    taken = seconds * 1000 + micros // 1000
    second = wait_for(lambda: holder() not in (None, first) and holder(), timeout=10)
    takeover = time.monotonic() - killed_at
    time.sleep(1)
    stop.set()
    thread.join()
    assert second != first
    assert taken < lapse, f"taken {taken - lapse} ms after the killed holder's lease lapsed"
    assert takeover < 5.5, f"takeover took {takeover:.1f}s"
    wait_for(lambda: set(sent) <= cluster.seen().keys(), timeout=30, interval=0.3)


@pytest.mark.timeout(120)
def test_multiple_mode_shares_messages_between_servers(make_cluster, conn_broker_factory):
    broker = conn_broker_factory("mosquitto")
    cluster = make_cluster(
        {"mq": _mqtt(broker)},
        {
            "shared": {
                "connector": "mq",
                "topics": ["s/#"],
                "function": "handlers.count",
                "mode": "multiple",
                "options": {"qos": 1},
            }
        },
    )
    cluster.start_worker(processes=2)
    cluster.start_server("n1")
    cluster.start_server("n2")
    wait_for(lambda: cluster.connected("shared") == 2, timeout=20)
    n = 2000
    mqtt_publish(broker.port, "s/x", [f"m{i}".encode() for i in range(n)])
    wait_for(lambda: len(cluster.seen()) == n, timeout=60, interval=0.3)
    assert set(cluster.seen().values()) == {1}
    wait_for(lambda: sum(s["processed"] for s in cluster.status("shared")) == n, timeout=5)
    per_server = [s["processed"] for s in cluster.status("shared")]
    assert len(per_server) == 2 and min(per_server) > 0, per_server


@pytest.mark.timeout(120)
def test_binary_payloads_and_broker_down_at_start(make_cluster, conn_broker_factory):
    broker = conn_broker_factory("mosquitto", start=False)
    cluster = make_cluster(
        {"mq": _mqtt(broker)},
        {
            "bin": {
                "connector": "mq",
                "topics": ["b/#"],
                "function": "handlers.count",
                "options": {"qos": 1},
            }
        },
    )
    cluster.start_worker(processes=1)
    cluster.start_server()
    status = wait_for(
        lambda: [
            s
            for s in cluster.status("bin")
            if s.get("source", {}).get("state") in ("reconnecting", "connecting")
            and s.get("source", {}).get("last_error")
        ],
        timeout=20,
    )
    assert status[0]["source"]["last_error"]
    broker.start()
    wait_for(lambda: cluster.connected("bin") >= 1, timeout=30)
    mqtt_publish(broker.port, "b/x", [b"\xff\xfe\x00\x01", b"plain text", b""])
    wait_for(lambda: len(cluster.seen()) == 3, timeout=30)
    assert "bin:fffe0001" in cluster.seen()
    assert "plain text" in cluster.seen()


@pytest.mark.timeout(120)
def test_scripts_publish_to_each_broker(make_cluster, conn_broker_factory):
    import redis as redis_lib

    mosq = conn_broker_factory("mosquitto")
    tansu = conn_broker_factory("tansu")
    cluster = make_cluster(
        {
            "mq": _mqtt(mosq),
            "kf": _kafka(tansu),
            "rd": {"type": "redis", "settings": {"url": REDIS_URL}},
        },
        {},
    )
    cluster.start_worker(processes=1)
    settings = Settings(
        redis_url=REDIS_URL,
        key_prefix=cluster.prefix,
        data_dir=cluster.dir / ".fnhub",
        db_url=f"sqlite:///{cluster.dir / 'fnhub.db'}",
        project_dir=cluster.dir,
    )
    client = QueueClient(settings)
    wait_for(lambda: client.queue_has_worker("sync"), timeout=20)

    got: list[bytes] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = lambda _c, _u, m: got.append(m.payload)
    sub.connect("127.0.0.1", mosq.port)
    sub.subscribe("out/mqtt", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    channel = f"{cluster.prefix}-out"
    pubsub = redis_lib.Redis.from_url(REDIS_URL).pubsub()
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=1)
    try:
        for connector, topic in (("mq", "out/mqtt"), ("rd", channel), ("kf", "out-kafka")):
            result = client.call(
                "handlers.send",
                {"connector": connector, "topic": topic, "message": f"hi {connector}"},
            )
            assert result.status == "success", (result.error_type, result.error_message)
        wait_for(lambda: got == [b"hi mq"], timeout=10)
        message = pubsub.get_message(timeout=5)
        assert message and message["data"] == b"hi rd"
        bad = client.call("handlers.send", {"connector": "nope", "topic": "x", "message": "m"})
        assert bad.status == "failure" and "no connector named 'nope'" in bad.error_message
    finally:
        sub.loop_stop()
        pubsub.close()
        client.close()

    from aiokafka import AIOKafkaConsumer

    async def read_kafka() -> bytes:
        consumer = AIOKafkaConsumer(
            "out-kafka",
            bootstrap_servers=f"127.0.0.1:{tansu.port}",
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), 20)
            return message.value
        finally:
            await consumer.stop()

    assert asyncio.run(read_kafka()) == b"hi kf"
