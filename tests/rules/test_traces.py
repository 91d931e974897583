"""OpenTelemetry traces of a rule over mosquitto (`tracing: file`): one trace from the MQTT
message to the rule's published output, across the server and worker processes."""

from __future__ import annotations

import uuid

import pytest
from tests.conftest import wait_for
from tests.rules.conftest import wait_connected
from tests.spans import read_spans, trace_of
from tests.subscriptions.conftest import make_cluster  # noqa: F401  (fixture)

SCRIPT = """
import fnhub


@fnhub.api("doubles n")
def double(event, context):
    return {"n": event["n"] * 2}
"""


def doubler() -> dict:
    """The rule `in/double` → `traced.double` → `out/double`, QoS 1."""
    return {
        "connector": "broker",
        "topics": ["in/double"],
        "function": "traced.double",
        "options": {"qos": 1, "client_id": f"traced-{uuid.uuid4().hex[:6]}"},
        "publish": {"topic": "out/double", "qos": 1},
    }


@pytest.mark.timeout(120)
def test_mqtt_message_to_published_output_is_one_trace(make_cluster, mosquitto, listen):  # noqa: F811
    broker = {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": mosquitto.port}}
    rule = doubler()
    forward = {  # a rule without a function: its message and its publish
        "connector": "broker",
        "topics": ["in/fwd"],
        "options": {"qos": 1, "client_id": f"fwd-{uuid.uuid4().hex[:6]}"},
        "publish": {"topic": "out/fwd", "qos": 1},
    }
    cluster = make_cluster(
        {"broker": broker}, {"doubler": rule, "fwd": forward}, {"traced": SCRIPT}
    )
    folder = cluster.dir / "traces"
    cluster.env.update({"FNHUB_TRACING": "file", "FNHUB_TRACING_DIR": str(folder)})
    cluster.start_worker(processes=2)
    cluster.start_server()
    wait_connected(cluster, "doubler", "fwd")
    listener = listen()
    listener.publish("in/double", b'{"n": 21}', qos=1)
    listener.publish("in/fwd", b"as it is", qos=1)
    wait_for(lambda: listener.on("out/double") and listener.on("out/fwd"), timeout=30)
    assert listener.on("out/double") == [b'{"n":42}']

    names = {"doubler receive", "enqueue traced.double", "run traced.double", "out/double publish"}

    def whole() -> dict | None:
        spans = read_spans(folder)
        roots = [s for s in spans if s["name"] == "doubler receive"]
        if len(roots) != 1:
            return None
        found = trace_of(spans, roots[0]["trace_id"])
        return found if set(found) == names else None

    spans = wait_for(whole, timeout=20)
    receive, enqueue = spans["doubler receive"], spans["enqueue traced.double"]
    run, publish = spans["run traced.double"], spans["out/double publish"]
    # the links: message → enqueue → run, and message → publish
    assert receive["parent_id"] is None and receive["kind"] == "CONSUMER"
    assert enqueue["parent_id"] == receive["span_id"] and enqueue["kind"] == "PRODUCER"
    assert run["parent_id"] == enqueue["span_id"] and run["kind"] == "CONSUMER"
    assert publish["parent_id"] == receive["span_id"] and publish["kind"] == "PRODUCER"
    # what each says
    assert receive["attributes"]["messaging.system"] == "mqtt"
    assert receive["attributes"]["messaging.destination.name"] == "in/double"
    assert receive["attributes"]["fnhub.subscription"] == "doubler"
    assert receive["attributes"]["fnhub.status"] == "success"
    task_id = enqueue["attributes"]["fnhub.task_id"]
    assert run["attributes"]["fnhub.task_id"] == task_id
    assert run["attributes"]["fnhub.function"] == "traced.double"
    assert run["attributes"]["fnhub.status"] == "success"
    assert run["attributes"]["fnhub.attempt"] == 1
    assert run["attributes"]["fnhub.origin"] == "subscription"
    assert run["attributes"]["messaging.destination.name"] == "sub"
    assert 0 <= run["attributes"]["fnhub.queue_wait_seconds"] < 10
    assert publish["attributes"]["messaging.system"] == "mqtt"
    assert publish["attributes"]["messaging.destination.name"] == "out/double"
    assert all(s["status"] == "UNSET" for s in spans.values())
    # in order: received, enqueued, run, published, and the message settled last
    assert receive["start"] <= enqueue["start"] <= run["start"] <= run["end"]
    assert run["end"] <= publish["start"] <= publish["end"] <= receive["end"]
    roles = {name: s["resource"]["fnhub.role"] for name, s in spans.items()}
    assert roles == {
        "doubler receive": "server",
        "enqueue traced.double": "server",
        "run traced.double": "worker",
        "out/double publish": "server",
    }

    # the forwarding rule: its message's span and the publish under it, nothing queued
    def forwarded() -> dict | None:
        spans = read_spans(folder)
        roots = [s for s in spans if s["name"] == "fwd receive"]
        if len(roots) != 1:
            return None
        found = trace_of(spans, roots[0]["trace_id"])
        return found if set(found) == {"fwd receive", "out/fwd publish"} else None

    spans = wait_for(forwarded, timeout=20)
    receive, publish = spans["fwd receive"], spans["out/fwd publish"]
    assert receive["parent_id"] is None and publish["parent_id"] == receive["span_id"]
    assert receive["attributes"]["fnhub.status"] == "success"
    assert receive["start"] <= publish["start"] <= publish["end"] <= receive["end"]


class Mqtt5:
    """An MQTT 5 client that publishes with user properties and keeps what arrives on `out`,
    with its user properties."""

    def __init__(self, port: int, out: str) -> None:
        import threading

        import paho.mqtt.client as paho

        self.got: list[tuple[bytes, dict[str, str]]] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=f"mqtt5-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.on_connect = lambda c, *_: c.subscribe(out, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10), "did not subscribe"

    def _on_message(self, _c: object, _u: object, msg) -> None:  # type: ignore[no-untyped-def]
        props = dict(getattr(msg.properties, "UserProperty", []) or [])
        with self.lock:
            self.got.append((msg.payload, props))

    def publish(self, topic: str, payload: bytes, **user: str) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = list(user.items())
        self.client.publish(topic, payload, qos=1, properties=props).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.timeout(240)
def test_a_traceparent_user_property_continues_into_the_output(make_cluster, mosquitto):  # noqa: F811
    """An MQTT 5 message carrying a W3C traceparent: every span of its way (receive, enqueue,
    run, publish) is in the sender's trace, under the sender's span, and the published output
    carries a traceparent of that trace, naming the publish span."""
    broker = {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": mosquitto.port}}
    rule = doubler()
    cluster = make_cluster({"broker": broker}, {"doubler": rule}, {"traced": SCRIPT})
    folder = cluster.dir / "traces"
    cluster.env.update({"FNHUB_TRACING": "file", "FNHUB_TRACING_DIR": str(folder)})
    cluster.start_worker(processes=1)
    cluster.start_server()
    wait_connected(cluster, "doubler")
    client = Mqtt5(mosquitto.port, "out/double")
    trace_id, sender_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    try:
        client.publish("in/double", b'{"n": 4}', traceparent=f"00-{trace_id}-{sender_span}-01")
        wait_for(lambda: client.got, timeout=30)
    finally:
        client.close()
    [(payload, props)] = client.got
    assert payload == b'{"n":8}'

    names = {"doubler receive", "enqueue traced.double", "run traced.double", "out/double publish"}

    def whole() -> dict | None:
        found = trace_of(read_spans(folder), trace_id)
        return found if set(found) == names else None

    spans = wait_for(whole, timeout=20)
    receive, enqueue = spans["doubler receive"], spans["enqueue traced.double"]
    run, publish = spans["run traced.double"], spans["out/double publish"]
    assert receive["parent_id"] == sender_span
    assert enqueue["parent_id"] == receive["span_id"]
    assert run["parent_id"] == enqueue["span_id"]
    assert publish["parent_id"] == receive["span_id"]
    version, out_trace, out_span, flags = props["traceparent"].split("-")
    assert (version, out_trace, out_span, flags) == ("00", trace_id, publish["span_id"], "01")
