"""Settings validation errors name the field; test_connection fails fast and clearly."""

from __future__ import annotations

import time

import pytest

from fnhub.connectors import (
    ConnectorConfigError,
    ConnectorError,
    create_source,
    stable_client_id,
    test_connection,
    validate_settings,
)

from .conftest import SHARED_REDIS_URL, free_port


@pytest.mark.parametrize(
    ("kind", "settings", "field"),
    [
        ("mqtt", {"port": 1883}, "host"),
        ("mqtt", {"host": "h", "port": "abc"}, "port"),
        ("mqtt", {"host": "h", "port": 70000}, "port"),
        ("mqtt", {"host": "h", "protocol": "4"}, "protocol"),
        ("mqtt", {"host": "h", "hots": "typo"}, "hots"),
        ("mqtt", {"host": "h", "tls": {"ca_cert": "x"}}, "tls"),
        ("kafka", {}, "bootstrap_servers"),
        ("kafka", {"bootstrap_servers": "localhost"}, "bootstrap_servers"),
        ("kafka", {"bootstrap_servers": "h:1", "security_protocol": "SASL_SSL"}, "sasl_mechanism"),
        ("kafka", {"bootstrap_servers": "h:1", "security_protocol": "TLS"}, "security_protocol"),
        ("redis", {}, "url or host"),
        ("redis", {"url": "http://x"}, "url"),
        ("redis", {"host": "h", "db": -1}, "db"),
        ("nats", {}, "servers"),
        ("nats", {"servers": "http://h:4222"}, "nats://"),
        ("nats", {"servers": "nats://h", "hots": "typo"}, "hots"),
        ("rabbitmq", {}, "url or host"),
        ("rabbitmq", {"url": "http://x"}, "amqp://"),
        ("rabbitmq", {"host": "h", "exchange_type": "fan"}, "exchange_type"),
    ],
)
def test_invalid_settings_name_the_field(kind, settings, field):
    with pytest.raises(ConnectorConfigError) as err:
        validate_settings(kind, settings)
    assert field in str(err.value)
    assert kind in str(err.value)


def test_valid_settings_normalised():
    m = validate_settings("mqtt", {"host": "h", "protocol": 5, "tls": True})
    assert m.protocol == "5" and m.clean_start is False and m.session_expiry == 3600
    k = validate_settings("kafka", {"bootstrap_servers": "a:9092, b:9093"})
    assert k.bootstrap_servers == ["a:9092", "b:9093"]
    r = validate_settings("redis", {"url": "unix:///tmp/r.sock"})
    assert r.url == "unix:///tmp/r.sock"
    assert "password" not in repr(validate_settings("redis", {"host": "h", "password": "pw"}))


def test_unknown_type_and_bad_options():
    with pytest.raises(ConnectorConfigError, match="unknown connector type 'pulsar'"):
        validate_settings("pulsar", {})
    with pytest.raises(ConnectorConfigError, match="kind"):
        create_source(
            "redis",
            {"host": "h"},
            topics=["t"],
            window=1,
            group=None,
            client_id="c",
            options={"kind": "queue"},
        )
    with pytest.raises(ConnectorConfigError, match="qos"):
        create_source(
            "mqtt",
            {"host": "h"},
            topics=["t"],
            window=1,
            group=None,
            client_id="c",
            options={"qos": 3},
        )
    with pytest.raises(ConnectorConfigError, match="window"):
        create_source(
            "mqtt", {"host": "h"}, topics=["t"], window=0, group=None, client_id="c", options={}
        )
    with pytest.raises(ConnectorConfigError, match="heartbeat_interval_ms"):
        create_source(
            "kafka",
            {"bootstrap_servers": "h:1"},
            topics=["t"],
            window=1,
            group="g",
            client_id="c",
            options={"session_timeout_ms": 1000, "heartbeat_interval_ms": 1000},
        )


def test_stable_client_id():
    a = stable_client_id("plant broker", "temps/room 1")
    assert a == stable_client_id("plant broker", "temps/room 1")
    assert a != stable_client_id("plant broker", "temps/room 2")
    assert a != stable_client_id("plant broker", "temps/room 1", node="server-2")
    assert all(c.isalnum() or c in "-_" for c in a)


@pytest.mark.parametrize(
    ("kind", "settings", "match"),
    [
        ("redis", lambda p: {"host": "127.0.0.1", "port": p}, "refused"),
        ("mqtt", lambda p: {"host": "127.0.0.1", "port": p}, "refused"),
        ("kafka", lambda p: {"bootstrap_servers": f"127.0.0.1:{p}"}, "bootstrap"),
    ],
)
async def test_connection_dead_port(kind, settings, match):
    t0 = time.monotonic()
    with pytest.raises(ConnectorError) as err:
        await test_connection(kind, settings(free_port()), timeout=3)
    assert time.monotonic() - t0 < 5
    assert match in str(err.value).lower()
    assert "127.0.0.1" in str(err.value)


async def test_connection_ok(conn_mosquitto, conn_tansu):
    await test_connection("redis", {"url": SHARED_REDIS_URL}, timeout=3)
    await test_connection("mqtt", {"host": "127.0.0.1", "port": conn_mosquitto.port}, timeout=3)
    await test_connection("kafka", {"bootstrap_servers": f"127.0.0.1:{conn_tansu.port}"}, timeout=3)


@pytest.mark.parametrize(
    ("kind", "settings", "options", "field"),
    [
        ("redis", {"host": "h"}, {"kind": "stream", "ack_interval_ms": -1}, "ack_interval_ms"),
        ("kafka", {"bootstrap_servers": "h:1"}, {"fetch_max_wait_ms": 0}, "fetch_max_wait_ms"),
    ],
)
def test_batching_options_out_of_range_name_the_option(kind, settings, options, field):
    with pytest.raises(ConnectorConfigError, match=field):
        create_source(
            kind, settings, topics=["t"], window=1, group="g", client_id="c", options=options
        )
