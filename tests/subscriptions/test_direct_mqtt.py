"""`path: direct` on MQTT, end to end against a real Mosquitto: the holder's worker child holds
the subscription itself (QoS 1, persistent session, PUBACK after the function finished).

No server runs in these tests: a direct subscription needs none.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from tests.conftest import wait_for
from tests.subscriptions.test_direct_path import (
    CRASH,
    HANG,
    _direct_children,
    _records,
    _wait_children,
    fail_over_single_mode,
)
from tests.subscriptions.test_mqtt_kafka import mqtt_publish


def _connector(broker) -> dict:
    return {"mq": {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": broker.port}}}


def _subscription(topic: str, **extra: object) -> dict:
    return {
        "connector": "mq",
        "topics": [topic],
        "function": "handlers.count",
        "window": 50,
        "options": {"qos": 1},
        "path": "direct",
        "mode": "single",
        "record_limit": 100_000,
        **extra,
    }


def _wait_connected(cluster, name: str) -> None:
    """Until the holder's one child reports its subscription made (publishes reach it)."""
    _wait_children(cluster, name, 1)
    wait_for(
        lambda: [v["source"]["state"] for v in cluster.status(name)] == ["connected"],
        timeout=30,
        interval=0.2,
    )


@pytest.mark.timeout(240)
def test_direct_mqtt_handles_records_and_status(make_cluster, conn_broker_factory):
    broker = conn_broker_factory("mosquitto")
    cluster = make_cluster(_connector(broker), {"direct": _subscription("d/#")})
    cluster.start_worker(processes=2)  # single mode: one child on the holder, not two
    _wait_connected(cluster, "direct")
    n = 2000
    messages = [f"m{i}" for i in range(n)]
    mqtt_publish(broker.port, "d/a", [m.encode() for m in messages])
    wait_for(lambda: len(cluster.seen()) == n, timeout=90, interval=0.3)
    assert cluster.seen() == dict.fromkeys(messages, 1)
    wait_for(lambda: len(_records(cluster, "direct")) == n, timeout=30, interval=0.3)
    assert set(_records(cluster, "direct").values()) == {"success"}
    [view] = cluster.status("direct")
    assert view["path"] == "direct" and view["mode"] == "single"
    assert view["source"]["max_in_flight"] <= 50
    wait_for(lambda: cluster.status("direct")[0]["processed"] == n, timeout=5, interval=0.2)
    assert len(_direct_children(cluster, "direct")) == 1


@pytest.mark.timeout(270)
def test_direct_mqtt_child_killed_mid_burst_loses_nothing(make_cluster, conn_broker_factory):
    broker = conn_broker_factory("mosquitto")
    cluster = make_cluster(_connector(broker), {"burst": _subscription("b/#")})
    cluster.set_delay(0.002)
    cluster.start_worker(processes=1)
    _wait_connected(cluster, "burst")
    n = 3000
    messages = [f"m{i}" for i in range(n)]
    mqtt_publish(broker.port, "b/x", [m.encode() for m in messages])
    wait_for(lambda: len(cluster.seen()) > 300, timeout=60, interval=0.05)
    [victim] = _direct_children(cluster, "burst")
    os.kill(victim, signal.SIGKILL)
    assert len(cluster.seen()) < n
    # its replacement resumes the session: the broker sends what was not acknowledged again
    wait_for(lambda: len(cluster.seen()) == n, timeout=120, interval=0.3)
    assert cluster.seen().keys() == set(messages)
    wait_for(lambda: victim not in _direct_children(cluster, "burst"), timeout=10)
    assert len(_direct_children(cluster, "burst")) == 1


@pytest.mark.timeout(240)
def test_direct_mqtt_timeout_is_final_and_the_rest_of_its_batch_comes_again(
    make_cluster, conn_broker_factory
):
    """The messages read with the stuck one were not acknowledged (the PUBACK comes after the
    function): the replacement gets them again; the stuck one gets its timeout record."""
    broker = conn_broker_factory("mosquitto")
    cluster = make_cluster(
        _connector(broker),
        {"hung": _subscription("h/#", function="hang.hang")},
        extra_scripts={"hang": HANG},
    )
    cluster.start_worker(processes=1)
    _wait_connected(cluster, "hung")
    [before] = _direct_children(cluster, "hung")
    messages = ["stuck", *(f"m{i}" for i in range(20))]
    mqtt_publish(broker.port, "h/x", [m.encode() for m in messages])
    wait_for(lambda: len(cluster.seen()) == 20, timeout=120, interval=0.2)
    raw = cluster.redis.hgetall(f"{cluster.prefix}:cache:ctl:runs")
    runs = {k.decode(): int(v) for k, v in raw.items()}
    assert runs["stuck"] == 1, "a timed-out message is final, not run again"
    assert cluster.seen().keys() == set(messages[1:])
    wait_for(lambda: before not in _direct_children(cluster, "hung"), timeout=10)
    wait_for(lambda: "timeout" in _records(cluster, "hung").values(), timeout=30, interval=0.3)
    assert list(_records(cluster, "hung").values()).count("timeout") == 1
    time.sleep(2)  # acknowledged: nothing comes a third time
    assert cluster.redis.hgetall(f"{cluster.prefix}:cache:ctl:runs")[b"stuck"] == b"1"


@pytest.mark.timeout(270)
def test_direct_mqtt_message_whose_child_dies_every_time_is_dead_lettered(
    make_cluster, conn_broker_factory
):
    broker = conn_broker_factory("mosquitto")
    cluster = make_cluster(
        _connector(broker),
        {"boom": _subscription("x/#", function="crash.crash")},
        extra_scripts={"crash": CRASH},
    )
    cluster.start_worker(processes=1)
    _wait_connected(cluster, "boom")
    mqtt_publish(broker.port, "x/y", [b"a", b"boom", b"b"])
    wait_for(lambda: len(cluster.seen()) == 2, timeout=180, interval=0.2)
    wait_for(lambda: cluster.redis.xlen(f"{cluster.prefix}:dead") == 1, timeout=60)
    raw = cluster.redis.hgetall(f"{cluster.prefix}:cache:ctl:runs")
    runs = {k.decode(): int(v) for k, v in raw.items()}
    assert runs["boom"] == 3, "max_attempts (3) runs, then no more"
    [dead] = cluster.redis.xrange(f"{cluster.prefix}:dead")
    assert b"worker process died" in dead[1][b"reason"]
    wait_for(lambda: "dead" in _records(cluster, "boom").values(), timeout=30, interval=0.3)
    time.sleep(2)  # the dead-lettered message was acknowledged: it does not come again
    assert int(cluster.redis.hget(f"{cluster.prefix}:cache:ctl:runs", "boom")) == 3


@pytest.mark.timeout(270)
def test_direct_mqtt_single_mode_fails_over_and_resumes_the_session(
    make_cluster, conn_broker_factory
):
    """The new holder's child connects under the same client id: the session, with the
    messages queued and unacknowledged in it, is its own."""
    broker = conn_broker_factory("mosquitto")
    cluster = make_cluster(_connector(broker), {"one": _subscription("o/#")})
    fail_over_single_mode(
        cluster,
        "one",
        lambda messages: mqtt_publish(broker.port, "o/x", [m.encode() for m in messages]),
        lambda _sent: None,  # acknowledged: every message was handled, none is left to come
        ready=_wait_connected,
    )
