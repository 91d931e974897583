"""DataFlux Func scripts, unchanged, under a real fnhub server and worker: a connector message
handler `handler(topic, message)` that publishes to MQTT through `DFF.CONN`, a cron function
using `DFF.CACHE` and `DFF.CRON_JOB`, API functions returning `DFF.RESP` / `DFF.REDIRECT`
behind an endpoint named by DataFlux Func's `set__script.func` id, a Redis connector's client."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
import redis
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from tests.conftest import REDIS_URL, call_ok, wait_for
from tests.connectors.conftest import conn_broker_factory  # noqa: F401  (fixture)
from tests.subscriptions.conftest import Cluster

# scripts/plant.py, as a DataFlux Func user writes it (no imports of fnhub or DFF)
PLANT = """
import json


@DFF.API("Forward a sensor reading as an alert")
def handler(topic, message):
    reading = json.loads(message)
    alert = {"sensor": topic.split("/")[-1], "temp": reading["temp"],
             "task": _DFF_TASK_ID, "origin": _DFF_ORIGIN}
    DFF.CONN("plant_mqtt").publish("alerts/" + alert["sensor"], json.dumps(alert), qos=1)
    DFF.CACHE.incr("handled")
    return alert


@DFF.API("Count ticks")
def tick():
    n = DFF.CACHE.incr("ticks")
    DFF.CACHE.lpush("tick_ids", _DFF_TASK_ID)
    DFF.CACHE.hmset("tick_info", {"origin": _DFF_ORIGIN, "expr": _DFF_CRON_EXPR,
                                  "job": _DFF_ORIGIN_ID})
    if n == 1:
        DFF.CRON_JOB.set_cron_expr("*/2 * * * * *", expires=300)
    DFF.CACHE.hset("tick_info", "dynamic", DFF.CRON_JOB.get_cron_expr() or "")


@DFF.API("Hello page", category="web")
def page(name="world"):
    return DFF.RESP("<h1>hello " + name + "</h1>", status_code=203, content_type="html",
                    headers={"X-Origin": _DFF_ORIGIN, "X-Method": _DFF_HTTP_REQUEST["method"]})


@DFF.API("Elsewhere")
def go():
    return DFF.REDIRECT("https://example.invalid/caf\u00e9")


@DFF.API("Redis through a connector")
def remember(key, value):
    conn = DFF.SRC("plant_redis")
    conn.query("SET", key, value)
    return {"query": conn.query("GET", key), "get": conn.get(key),
            "types": [c["type"] for c in DFF.CONN.query()]}
"""


def _yaml(mqtt_port: int, prefix: str) -> dict:
    return {
        "connectors": {
            "plant_mqtt": {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": mqtt_port}},
            "plant_redis": {"type": "redis", "settings": {"url": REDIS_URL}},
        },
        "subscriptions": {
            "readings": {
                "connector": "plant_mqtt",
                "topics": ["sensors/#"],
                "function": "plant.handler",
                "options": {"qos": 1},
            }
        },
        "cron_jobs": [{"id": "ticker", "function": "farm__plant.tick", "expr": "* * * * * *"}],
        "endpoints": {
            "hello": {"function": "farm__plant.page", "mode": "sync"},
            "away": {"function": "plant.go", "mode": "sync"},
        },
    }


@pytest.fixture
def cluster(tmp_path: Path, conn_broker_factory) -> Iterator[tuple[Cluster, int]]:  # noqa: F811
    import os
    import subprocess
    import sys

    broker = conn_broker_factory("mosquitto")
    prefix = f"tdff{uuid.uuid4().hex[:10]}"
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "plant.py").write_text(PLANT)
    (tmp_path / "fnhub.yaml").write_text(yaml.safe_dump(_yaml(broker.port, prefix)))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")},
        "FNHUB_REDIS_URL": REDIS_URL,
        "FNHUB_KEY_PREFIX": prefix,
        "FNHUB_DATA_DIR": str(tmp_path / ".fnhub"),
        "FNHUB_DB_URL": f"sqlite:///{tmp_path / 'fnhub.db'}",
        "FNHUB_HEARTBEAT_SECONDS": "0.5",
        "FNHUB_ACCESS_LOG": "false",
    }
    c = Cluster(tmp_path, env, prefix, redis.Redis.from_url(REDIS_URL))
    applied = subprocess.run(
        [sys.executable, "-c", "from fnhub.cli import main; main()", "apply", "-p", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert applied.returncode == 0, applied.stderr
    c.worker = c.cli("worker", "--processes", "2", "--queues", "sub,sync,cron")
    c.start_server()
    try:
        yield c, broker.port
    finally:
        c.close()


def _subscriber(port: int, topic: str) -> tuple[mqtt.Client, list[dict]]:
    got: list[dict] = []
    ready = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, msg: got.append(
        {"topic": msg.topic, **json.loads(msg.payload)}
    )
    client.on_subscribe = lambda *_args: ready.set()
    client.on_connect = lambda c, *_args: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert ready.wait(10), "no SUBACK"
    return client, got


@pytest.mark.timeout(150)
def test_dataflux_func_scripts_run_unchanged_under_fnhub(cluster):
    c, port = cluster
    base = f"http://127.0.0.1:{c.ports['n1']}"
    cache = f"{c.prefix}:cache:plant"

    # a broker message → handler(topic, message) → DFF.CONN(...).publish to MQTT
    wait_for(lambda: c.connected("readings") >= 1, timeout=30)
    listener, alerts = _subscriber(port, "alerts/#")
    try:
        sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        sender.connect("127.0.0.1", port)
        sender.loop_start()
        sender.publish("sensors/boiler", json.dumps({"temp": 91}), qos=1).wait_for_publish(10)
        sender.loop_stop()
        sender.disconnect()
        wait_for(lambda: alerts, timeout=30)
    finally:
        listener.loop_stop()
        listener.disconnect()
    [alert] = alerts
    assert alert["topic"] == "alerts/boiler" and alert["sensor"] == "boiler"
    assert alert["temp"] == 91 and alert["origin"] == "connector" and alert["task"]
    assert c.redis.get(f"{cache}:handled") == b"1"

    # cron: every second, DFF.CACHE counts; the script changes its own schedule
    wait_for(lambda: int(c.redis.get(f"{cache}:ticks") or 0) >= 2, timeout=30)
    info = {k.decode(): v.decode() for k, v in c.redis.hgetall(f"{cache}:tick_info").items()}
    assert info["origin"] == "cronJob" and info["job"] == "ticker"
    assert info["expr"] in ("* * * * * *", "*/2 * * * * *")
    assert info["dynamic"] == "*/2 * * * * *"
    ids = c.redis.lrange(f"{cache}:tick_ids", 0, -1)
    assert len(set(ids)) == len(ids)  # each tick saw its own task id

    # endpoints: DFF.RESP and DFF.REDIRECT, the first named `farm__plant.page`
    answer = httpx.get(f"{base}/e/hello", params={"name": "ada"}, timeout=30)
    assert answer.status_code == 203, answer.text
    assert answer.text == "<h1>hello ada</h1>"
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["x-origin"] == "syncAPI" and answer.headers["x-method"] == "GET"
    away = httpx.get(f"{base}/e/away", timeout=30)
    assert away.status_code == 302
    assert away.headers["location"] == "https://example.invalid/caf%C3%A9"

    # a Redis connector's client, called by its DataFlux Func id
    client = c.queue_client()
    try:
        key = f"{c.prefix}:through-connector"
        result = call_ok(client, "farm__plant.remember", {"key": key, "value": "v1"})
        assert result.result == {"query": "v1", "get": "v1", "types": ["mqtt", "redis"]}
        assert c.redis.get(key) == b"v1"
    finally:
        client.close()
