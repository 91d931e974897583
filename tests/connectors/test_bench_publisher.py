"""bench/subscribe.py's pipelined MQTT publisher (hand-encoded QoS 1 PUBLISHes on a plain
socket) delivers every message once, in order, with its payload, past the 65,535 packet ids."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from bench import subscribe
from paho.mqtt.enums import CallbackAPIVersion


def test_pipelined_publisher_delivers_every_message_in_order(tmp_path: Path) -> None:
    n = 70_000  # more than the packet ids, so they wrap while others are unacknowledged
    broker, port = subscribe.start_broker("mqtt", tmp_path)  # the bench's own mosquitto
    got: list[bytes] = []
    done, subscribed = threading.Event(), threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c, _u, msg) -> None:  # type: ignore[no-untyped-def]
        assert msg.qos == 1
        got.append(msg.payload)
        if len(got) == n:
            done.set()

    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    try:
        sub.connect("127.0.0.1", port)
        sub.subscribe("pipe/#", qos=1)
        sub.loop_start()
        assert subscribed.wait(10)
        subscribe.mqtt_publish_pipelined(port, "pipe/a-topic-name", n)
        assert done.wait(120), f"{len(got)} of {n} messages arrived"
        assert got == [f"m{i}".encode() for i in range(n)]
    finally:
        sub.loop_stop()
        assert broker is not None
        broker.terminate()
        broker.wait(10)
