"""`DFF.CONN` / `DFF.SRC` in a worker process: clients that publish to Redis, MQTT and Kafka
(real brokers), Redis commands, and `DFF.CONN.save/query/delete` with DataFlux Func's config
field names on fnhub's stored connectors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
import redis
from aiokafka import AIOKafkaConsumer
from paho.mqtt.enums import CallbackAPIVersion
from tests.conftest import wait_for
from tests.connectors.conftest import conn_broker_factory  # noqa: F401  (fixture)
from tests.server.test_connector_edits import DIRECT

from fnhub import connections, runtime
from fnhub.bootstrap import Services
from fnhub.config import Settings
from fnhub.connections import UnknownConnector
from fnhub.dff import DFF
from fnhub.dff.connectors import settings_from_dff
from fnhub.tasks import Task


@pytest.fixture
def worker_side(settings: Settings, services: Services, monkeypatch) -> Iterator[None]:
    """This process as a worker child running a task, with its own connector cache."""
    monkeypatch.setattr(connections, "_cache", connections._ProcessCache())
    client = redis.Redis.from_url(settings.redis_url)
    runtime.init(settings, client)
    token = runtime.current_task.set(Task(function="plant.send"))
    yield
    runtime.current_task.reset(token)
    runtime.init(None, None)  # type: ignore[arg-type]
    client.close()


def _kafka_read(port: int, topic: str) -> list[bytes]:
    async def read() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=f"127.0.0.1:{port}", auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=10_000)
            return [m.value for msgs in batch.values() for m in msgs if m.value is not None]
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_save_query_delete_and_publish_to_kafka(worker_side, conn_broker_factory):  # noqa: F811
    tansu = conn_broker_factory("tansu")
    DFF.CONN.save("events", "kafka", {"servers": f"127.0.0.1:{tansu.port}"}, title="Events")
    DFF.CONN.save("cache", "redis", {"host": "127.0.0.1", "port": 6379, "database": 0})
    assert DFF.CONN.query() == [
        {"id": "cache", "title": "cache", "type": "redis"},
        {"id": "events", "title": "events", "type": "kafka"},
    ]
    assert [c["id"] for c in DFF.CONN.query("kafka")] == ["events"]
    topic = f"dff-{uuid.uuid4().hex[:8]}"
    DFF.CONN("events").publish(topic, "hello kafka")  # returns once the broker took it
    assert _kafka_read(tansu.port, topic) == [b"hello kafka"]
    DFF.CONN.delete("events")
    assert [c["id"] for c in DFF.CONN.query()] == ["cache"]
    with pytest.raises(UnknownConnector, match=r"no connector named 'events' \(known: cache\)"):
        DFF.CONN("events")
    with pytest.raises(NotImplementedError, match="'mysql' is not supported by fnhub"):
        DFF.CONN.save("db", "mysql", {"host": "127.0.0.1"})


def test_redis_connector_publishes_and_runs_commands(worker_side, settings):
    DFF.CONN.save("cache", "redis", {"host": "127.0.0.1", "port": 6379})
    channel = f"{settings.key_prefix}:news"
    listener = redis.Redis.from_url(settings.redis_url).pubsub()
    listener.subscribe(channel)
    assert listener.get_message(timeout=2)["type"] == "subscribe"
    conn = DFF.SRC("cache")
    conn.publish(channel, "hello redis")
    assert listener.get_message(timeout=5)["data"] == b"hello redis"
    conn.pub(channel, {"as": "json"})
    assert listener.get_message(timeout=5)["data"] == b'{"as":"json"}'
    listener.close()
    key = f"{settings.key_prefix}:conn-key"
    assert conn.query("SET", key, "v") is True
    assert conn.query("GET", key) == "v" and conn.get(key) == "v"
    assert conn.run("strlen", key) == 1
    # DataFlux Func's Redis client methods, unscoped: its argument names and reply shapes
    assert conn.set(f"{key}:2", "w", expires=60) is True and 0 < conn.ttl(f"{key}:2") <= 60
    assert conn.mget([key, f"{key}:2", f"{key}:3"]) == {key: "v", f"{key}:2": "w", f"{key}:3": None}
    assert conn.get_pattern(f"{key}*") == {key: "v", f"{key}:2": "w"}
    assert conn.lpush(f"{key}:l", ["a", "b"]) == 2 and conn.lrange(f"{key}:l") == ["b", "a"]
    assert conn.hset(f"{key}:h", "f", 1) == 1 and conn.hgetall(f"{key}:h") == {"f": "1"}
    assert conn.delete_pattern(f"{key}*") == 4
    assert conn.dbsize() >= 0 and conn.ping()
    assert conn.echo("raw redis-py too") == "raw redis-py too"
    with pytest.raises(NotImplementedError, match="time series"):
        conn.ts_add("temp", 21)


def test_mqtt_connector_publishes_with_qos_and_refuses_other_methods(
    worker_side,
    conn_broker_factory,  # noqa: F811
):
    broker = conn_broker_factory("mosquitto")
    DFF.CONN.save("plant", "mqtt", {"host": "127.0.0.1", "port": broker.port, "user": None})
    got: list[tuple[str, bytes, bool]] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    listener.on_message = lambda _c, _u, m: got.append((m.topic, m.payload, m.retain))
    listener.connect("127.0.0.1", broker.port)
    listener.subscribe("alerts/#", qos=1)
    listener.loop_start()
    try:
        DFF.CONN("plant").publish("alerts/retained", "kept", qos=1, retain=True)
        listener.unsubscribe("alerts/#")
        listener.subscribe("alerts/#", qos=1)  # a retained message comes with a new SUBSCRIBE
        wait_for(lambda: any(retained for *_rest, retained in got), timeout=10)
    finally:
        listener.loop_stop()
        listener.disconnect()
    assert ("alerts/retained", b"kept", True) in got
    DFF.CONN("plant").check()  # connects, or raises
    with pytest.raises(NotImplementedError, match="offers publish"):
        DFF.CONN("plant").subscribe("x")


def test_dataflux_func_config_fields_become_fnhub_settings():
    assert settings_from_dff(
        "kafka", {"servers": "a:1,b:2", "user": "u", "password": "p", "groupId": "g"}
    ) == {
        "bootstrap_servers": "a:1,b:2",
        "sasl_username": "u",
        "sasl_password": "p",
        "client_id": "g",
        "sasl_mechanism": "PLAIN",
        "security_protocol": "SASL_PLAINTEXT",
    }
    assert settings_from_dff(
        "mqtt", {"host": "h", "user": "u", "clientId": "c", "topicHandlers": []}
    ) == {"host": "h", "username": "u", "client_id": "c"}
    assert settings_from_dff("redis", {"host": "h", "database": 2, "useTLS": True}) == {
        "host": "h",
        "db": 2,
        "tls": True,
    }


def test_edits_that_would_strand_a_direct_subscription_are_refused(
    worker_side, settings: Settings, services: Services
) -> None:
    """`DFF.CONN.save/delete` go through the same check as the API's PUT and DELETE
    (`store.connectors`): settings a `path: direct` reader cannot make its consumer with, and
    deleting a connector in use, are refused in DFF.CONN's words, the stored one unchanged."""
    from fnhub.store.connectors import ConnectorRefused
    from fnhub.subscriptions.area import remove_subscription, save_subscription

    DFF.CONN.save("plant", "mqtt", {"host": "127.0.0.1", "port": 1883})
    direct = DIRECT  # the API's test's subscription (disabled: the check needs no run)
    save_subscription(services.db, settings, "on-plant", direct, actor="tests")
    with pytest.raises(ConnectorRefused) as refused:
        DFF.CONN.save("plant", "mqtt", {"host": "127.0.0.1", "port": 1883, "clean_start": True})
    assert refused.value.kind == "invalid_settings"
    assert str(refused.value).startswith(
        "DFF.CONN.save: subscription 'on-plant' reads this connector on path: direct"
    )
    assert "persistent session" in str(refused.value)
    assert "clean_start" not in connections.connector_configs(refresh=True)["plant"].settings

    with pytest.raises(ConnectorRefused) as in_use:
        DFF.CONN.delete("plant")
    assert in_use.value.kind == "connector_in_use"
    assert str(in_use.value).startswith(
        "DFF.CONN.delete: connector 'plant' is used by subscription(s) on-plant"
    )
    assert [c["id"] for c in DFF.CONN.query()] == ["plant"]

    # queued, the subscription takes the settings; deleted, the connector may go
    save_subscription(services.db, settings, "on-plant", {**direct, "path": "queued"}, actor="t")
    DFF.CONN.save("plant", "mqtt", {"host": "127.0.0.1", "port": 1883, "clean_start": True})
    assert remove_subscription(services.db, "on-plant", actor="tests")
    DFF.CONN.delete("plant")
    assert DFF.CONN.query() == []
