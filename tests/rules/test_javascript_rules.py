"""JavaScript rules over a real mosquitto at QoS 1: Baetyl's callback handler and an async
`(event, context)` one publish their output; the input is acknowledged only after the output went
out (a server killed while the handler runs gets the message again); empty output publishes
nothing; a failing handler publishes its error."""

from __future__ import annotations

import shutil
import time
import uuid

import orjson
import pytest
from tests.conftest import wait_for
from tests.rules.conftest import wait_connected
from tests.subscriptions.conftest import make_cluster  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(not shutil.which("node"), reason="node not on PATH")

RULES = r"""
const fnhub = require('fnhub');

exports.callback = (event, context, callback) => {
  if (event.empty) return callback(null, '');   // Baetyl: nothing is published
  if (event.err) return callback(new TypeError(event.err));
  const { messageTopic: topic, messageQOS: qos } = context;
  callback(null, { ...event, topic, qos, via: 'callback' });
};

exports.modern = async (event, context) => ({ ...event, fn: context.functionName, via: 'async' });

exports.slow = fnhub.api({ timeout: 60 }, async (event, context) => {
  await fnhub.cache.hincr('started', String(event.id), 1, { scope: 'ctl' });
  const delay = Number(await fnhub.cache.get('delay', 0, { scope: 'ctl' }));
  await new Promise((resolve) => setTimeout(resolve, delay * 1000));
  return { id: event.id, via: 'slow' };
});
"""


def _mqtt(port: int) -> dict:
    return {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": port}}


def _rule(topic: str, function: str, out: str) -> dict:
    return {
        "connector": "broker",
        "topics": [topic],
        "function": function,
        "options": {"qos": 1, "client_id": f"{topic.replace('/', '-')}-{uuid.uuid4().hex[:6]}"},
        "publish": {"topic": out, "qos": 1},
    }


@pytest.mark.timeout(120)
def test_baetyl_handlers_in_javascript_publish_their_output_at_qos_1(
    make_cluster,  # noqa: F811
    mosquitto,
    listen,
) -> None:
    cluster = make_cluster(
        {"broker": _mqtt(mosquitto.port)},
        {
            "cb": _rule("in/cb", "jsrules.callback", "out/cb"),
            "modern": _rule("in/modern", "jsrules.modern", "out/modern"),
        },
        {"jsrules.js": RULES},
    )
    cluster.start_worker(processes=1)
    cluster.start_server()
    wait_connected(cluster, "cb", "modern")
    listener = listen()
    listener.publish("in/cb", b'{"id":1}', qos=1)
    listener.publish("in/modern", b'{"id":2}', qos=1)
    wait_for(lambda: listener.on("out/cb") and listener.on("out/modern"), timeout=30)
    assert orjson.loads(listener.on("out/cb")[0]) == {
        "id": 1,
        "topic": "in/cb",
        "qos": 1,
        "via": "callback",
    }
    assert orjson.loads(listener.on("out/modern")[0]) == {
        "id": 2,
        "fn": "jsrules.modern",
        "via": "async",
    }
    assert listener.qos_on("out/cb") == [1] and listener.qos_on("out/modern") == [1]

    listener.publish("in/cb", b'{"empty":true}', qos=1)  # == "": nothing goes out
    listener.publish("in/cb", b'{"err":"no way"}', qos=1)  # the error is published instead
    wait_for(lambda: len(listener.on("out/cb")) >= 2, timeout=30)
    time.sleep(0.5)  # the empty output, handled before the error, would be here by now
    outputs = [orjson.loads(p) for p in listener.on("out/cb")]
    assert len(outputs) == 2
    assert outputs[1]["error"]["type"] == "TypeError"
    assert outputs[1]["error"]["message"] == "no way"


@pytest.mark.timeout(120)
def test_the_input_is_acknowledged_only_after_the_output(make_cluster, mosquitto, listen) -> None:  # noqa: F811
    cluster = make_cluster(
        {"broker": _mqtt(mosquitto.port)},
        {"slow": _rule("in/slow", "jsrules.slow", "out/slow")},
        {"jsrules.js": RULES},
    )
    cluster.set_delay(30)
    cluster.start_worker(processes=2)
    cluster.start_server()
    wait_connected(cluster, "slow")
    listener = listen()
    listener.publish("in/slow", b'{"id":7}', qos=1)
    started = lambda: int(cluster.redis.hget(f"{cluster.prefix}:cache:ctl:started", "7") or 0)  # noqa: E731
    wait_for(lambda: started() == 1, timeout=20)
    cluster.kill_server()  # the handler is waiting: the input is not acknowledged yet
    cluster.set_delay(0)
    cluster.start_server()  # same client id, persistent session: the broker delivers it again
    wait_for(lambda: listener.on("out/slow"), timeout=40)
    assert started() == 2
    assert orjson.loads(listener.on("out/slow")[0]) == {"id": 7, "via": "slow"}
    assert listener.qos_on("out/slow")[0] == 1
