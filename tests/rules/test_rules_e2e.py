"""Rules end to end over mosquitto (QoS 1): redelivery after a server kill, cycle refusal, error
messages, how return values are published, and output to another connector (Redis pub/sub)."""

from __future__ import annotations

import base64
import time
import uuid

import httpx
import orjson
import pytest
import redis
import yaml
from tests.conftest import REDIS_URL, wait_for
from tests.rules.conftest import fnhub_cmd, wait_connected
from tests.subscriptions.conftest import make_cluster  # noqa: F401  (fixture)

RULES = """
import time

import fnhub

VALUES = {
    "dict": {"a": 1},
    "list": [1, "x"],
    "bytes": b"\\x00\\xffraw",
    "str": "h\\u00e9llo",
    "int": 42,
    "float": 1.5,
    "bool": True,
    "none": None,
}


@fnhub.api("returns the value the message names")
def give(event, context):
    return VALUES[event["kind"]]


@fnhub.api("always raises")
def boom(event, context):
    raise ValueError(f"bad {event['id']}")


@fnhub.api("sleeps as long as the test says", timeout=60)
def slow(event, context):
    fnhub.cache.hincr("started", str(event["id"]), scope="ctl")
    time.sleep(float(fnhub.cache.get("delay", 0, scope="ctl") or 0))
    return {"id": event["id"]}
"""


def _mqtt(port: int) -> dict:
    return {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": port}}


def _rule(topic: str, function: str | None, publish: dict | None, **extra) -> dict:
    data = {"connector": "broker", "topics": [topic], "options": {"qos": 1}, **extra}
    if function:
        data["function"] = function
    if publish:
        data["publish"] = publish
    return data


@pytest.mark.timeout(120)
def test_server_killed_mid_processing_redelivers_and_publishes(make_cluster, mosquitto, listen):  # noqa: F811
    cluster = make_cluster(
        {"broker": _mqtt(mosquitto.port)},
        {
            "slow": _rule(
                "in/slow",
                "rules.slow",
                {"topic": "out/slow", "qos": 1},
                options={"qos": 1, "client_id": f"slow-{uuid.uuid4().hex[:6]}"},
            )
        },
        {"rules": RULES},
    )
    cluster.set_delay(30)
    cluster.start_worker(processes=2)
    cluster.start_server()
    wait_connected(cluster, "slow")
    listener = listen()
    listener.publish("in/slow", b'{"id":1}', qos=1)
    started = lambda: int(cluster.redis.hget(f"{cluster.prefix}:cache:ctl:started", "1") or 0)  # noqa: E731
    wait_for(lambda: started() == 1, timeout=20)
    cluster.kill_server()  # the handler is sleeping: the input is not acknowledged yet
    cluster.set_delay(0)
    cluster.start_server()  # same client id, persistent session: the broker delivers it again
    wait_for(lambda: listener.on("out/slow"), timeout=40)
    assert started() == 2
    assert listener.on("out/slow")[0] == b'{"id":1}'
    assert listener.qos_on("out/slow")[0] == 1


@pytest.mark.timeout(120)
def test_cycles_refused_by_api_and_apply(make_cluster, mosquitto):  # noqa: F811
    cluster = make_cluster(
        {"broker": _mqtt(mosquitto.port)},
        {"a-to-b": _rule("a", None, {"topic": "b"})},
        {"rules": RULES},
    )
    cluster.start_server()
    token = fnhub_cmd(cluster.env, cluster.dir, "keys", "create", "t").stdout.strip().split()[-1]
    url = f"http://127.0.0.1:{cluster.ports['n1']}/api/v1/subscriptions"
    headers = {"Authorization": f"Bearer {token}"}
    back = {"connector": "broker", "topics": ["b"], "publish": {"topic": "a"}}
    answer = httpx.put(f"{url}/b-to-a", json=back, headers=headers, timeout=10)
    assert answer.status_code == 400, answer.text
    assert "would loop forever: a-to-b → b-to-a → a-to-b" in answer.text
    # a rule whose output its own wildcard matches
    own = {"connector": "broker", "topics": ["s/#"], "function": "rules.give"}
    own["publish"] = {"topic": "s/out"}
    answer = httpx.put(f"{url}/self", json=own, headers=headers, timeout=10)
    assert answer.status_code == 400 and "self → self" in answer.text
    # not a cycle: accepted
    ok = httpx.put(f"{url}/b-to-c", json={**back, "publish": {"topic": "c"}}, headers=headers)
    assert ok.status_code == 200, ok.text
    # the same cycle through fnhub.yaml
    project = yaml.safe_load((cluster.dir / "fnhub.yaml").read_text())
    project["subscriptions"]["b-to-a"] = back
    (cluster.dir / "fnhub.yaml").write_text(yaml.safe_dump(project))
    applied = fnhub_cmd(cluster.env, cluster.dir, "apply")
    assert applied.returncode == 1
    assert "would loop forever" in applied.stderr and "b-to-a" in applied.stderr
    listed = httpx.get(url, headers=headers).json()["items"]
    assert sorted(s["name"] for s in listed) == ["a-to-b", "b-to-c"]


@pytest.mark.timeout(120)
def test_errors_return_values_and_output_to_redis(make_cluster, mosquitto, listen):  # noqa: F811
    channel = f"rules-out-{uuid.uuid4().hex[:8]}"
    cluster = make_cluster(
        {
            "broker": _mqtt(mosquitto.port),
            "local": {"type": "redis", "settings": {"url": REDIS_URL}},
        },
        {
            "values": _rule("in/values", "rules.give", {"topic": "out/values", "qos": 1}),
            "errors": _rule(
                "in/err",
                "rules.boom",
                {"topic": "out/ok", "qos": 1},
                error_publish={"topic": "out/err", "qos": 1},
            ),
            "errors-to-output": _rule("in/err2", "rules.boom", {"topic": "out/err2", "qos": 1}),
            "to-redis": _rule(
                "in/redis",
                "rules.give",
                {"connector": "local", "topic": channel, "kind": "pubsub"},
            ),
        },
        {"rules": RULES},
    )
    cluster.start_worker(processes=2)
    cluster.start_server()
    wait_connected(cluster, "values", "errors", "errors-to-output", "to-redis")
    pubsub = redis.Redis.from_url(REDIS_URL).pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    listener = listen()

    kinds = ["dict", "list", "bytes", "str", "int", "float", "bool", "none"]
    for kind in kinds:
        listener.publish("in/values", orjson.dumps({"kind": kind}), qos=1)
    listener.publish("in/err", b'{"id":7}', qos=1)
    listener.publish("in/err2", b'{"id":8}', qos=1)
    listener.publish("in/redis", b'{"kind":"dict"}', qos=1)

    wait_for(lambda: len(listener.on("out/values")) == 7, timeout=30)
    wait_for(lambda: listener.on("out/err") and listener.on("out/err2"), timeout=30)
    got = pubsub.get_message(timeout=15)
    time.sleep(1.0)  # `none` must publish nothing, errors nothing on out/ok
    assert sorted(listener.on("out/values")) == sorted(
        [b'{"a":1}', b'[1,"x"]', b"\x00\xffraw", "héllo".encode(), b"42", b"1.5", b"true"]
    )
    assert listener.on("out/ok") == []
    for topic, payload, function in (
        ("out/err", b'{"id":7}', "rules.boom"),
        ("out/err2", b'{"id":8}', "rules.boom"),
    ):
        [raw] = listener.on(topic)
        error = orjson.loads(raw)
        assert error["error"] == {"type": "ValueError", "message": f"bad {payload[6]:c}"}
        assert base64.b64decode(error["input"]) == payload
        assert error["function"] == function
        uuid.UUID(error["invoke_id"])
        assert error["status"] == "failure"
    assert got is not None and got["data"] == b'{"a":1}'
    pubsub.close()
