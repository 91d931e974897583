"""Which subscriptions may take `path: direct`: refused, with the reason, where it cannot run."""

from __future__ import annotations

import msgspec
import pytest
from tests.conftest import REDIS_URL

from fnhub.connections import ConnectorConfig
from fnhub.connectors.base import stable_client_id
from fnhub.subscriptions.direct import DirectJob, check_direct, consumer_args, session_client_id
from fnhub.subscriptions.spec import SpecError, parse_spec

REDIS = ConnectorConfig("local", "redis", {"url": REDIS_URL})
MQTT = ConnectorConfig("plant", "mqtt", {"host": "127.0.0.1", "port": 1883})
NATS = ConnectorConfig("bus", "nats", {"servers": ["nats://127.0.0.1:4222"]})
KAFKA = ConnectorConfig("log", "kafka", {"bootstrap_servers": "127.0.0.1:9092"})


def _spec(**extra: object):
    return parse_spec(
        {
            "name": "s",
            "connector": "local",
            "topics": ["in"],
            "function": "handlers.count",
            "options": {"kind": "stream"},
            "path": "direct",
            **extra,
        }
    )


def test_a_redis_stream_subscription_may_go_direct():
    check_direct(_spec(), REDIS)


def test_a_kafka_subscription_may_go_direct_in_either_mode():
    check_direct(_spec(options={}), KAFKA)
    check_direct(_spec(options={"session_timeout_ms": 3000}, mode="multiple"), KAFKA)
    check_direct(_spec(options={"assignment": "group"}, mode="single"), KAFKA)


def test_kafka_manual_assignment_in_multiple_mode_is_refused_with_the_reason():
    """Every worker would read every partition: each message handled once per worker."""
    with pytest.raises(SpecError, match="in multiple mode every worker would read every message"):
        check_direct(_spec(options={"assignment": "manual"}, mode="multiple"), KAFKA)
    with pytest.raises(SpecError, match="heartbeat_interval_ms must be below"):
        check_direct(_spec(options={"heartbeat_interval_ms": 9000}), KAFKA)


def test_pubsub_and_other_brokers_are_refused_with_the_reason():
    with pytest.raises(SpecError, match=r"options\.kind: stream"):
        check_direct(_spec(options={"kind": "pubsub"}), REDIS)
    with pytest.raises(SpecError, match="not available for nats"):
        check_direct(_spec(options={}), NATS)


def test_mqtt_goes_direct_in_single_mode_with_qos_1_and_a_persistent_session():
    check_direct(_spec(options={"qos": 1}, mode="single"), MQTT)
    check_direct(_spec(options={}, mode="single"), MQTT)  # qos 1 is the default


def test_mqtt_direct_refusals_say_why():
    """Mosquitto keeps a shared subscription's messages in a gone member's session; QoS 0 has
    no acknowledgement; a clean session forgets what a killed child held."""
    with pytest.raises(SpecError, match="needs mode: single"):
        check_direct(_spec(options={"qos": 1}, mode="multiple"), MQTT)
    with pytest.raises(SpecError, match="needs qos 1"):
        check_direct(_spec(options={"qos": 0}, mode="single"), MQTT)
    for settings in ({"clean_start": True}, {"protocol": "3.1.1"}, {"session_expiry": 0}):
        mqtt = ConnectorConfig("plant", "mqtt", {**MQTT.settings, **settings})
        with pytest.raises(SpecError, match="persistent session"):
            check_direct(_spec(options={}, mode="single"), mqtt)


def test_sql_rules_and_routes_stay_queued():
    with pytest.raises(SpecError, match="path: direct runs a function"):
        _spec(function=None, sql="SELECT * FROM 'in'", publish={"topic": "out"})


def test_the_group_is_the_queued_paths_and_server_consumer_names_are_dropped():
    spec = _spec(options={"kind": "stream", "consumer": "mine", "group": "g1"}, mode="single")
    assert consumer_args(spec) == ("g1", {"kind": "stream"})
    assert consumer_args(_spec())[0] == "fnhub-s"


def test_children_share_the_window():
    spec = _spec(window=100)
    job = DirectJob(msgspec.json.encode(spec), REDIS, {}, 3)
    assert job.share == 34  # every message of the window has a child to hold it
    assert DirectJob(msgspec.json.encode(_spec(window=1)), REDIS, {}, 2).share == 1


def test_the_mqtt_session_is_the_queued_single_modes():
    """Moved between the paths, a subscription resumes its broker session (and what it held)."""
    assert session_client_id(_spec(options={}), "plant") == stable_client_id("plant", "s")
    assert session_client_id(_spec(options={"client_id": "mine"}), "plant") == "mine"
