"""An MQTT consumer for a worker child: the direct path of a subscription (`path: direct`).

The child holds the subscription itself: QoS 1, an MQTT 5 persistent session (clean start off,
the settings' session expiry) under the subscription's stable client id, the one the queued
path's `single` mode uses (so a subscription moved between paths resumes its session), manual
PUBACKs sent once the child finished the batch, and `ReceiveMaximum` = the child's share of
the window, so the broker never has more than that in flight to it. A network thread owns the
socket (`netloop`): it reads ahead and keeps the connection alive while a function runs; the
child takes what it read (`read`) and queues the batch's PUBACKs in one wake-up (`ack`).

What a killed child read and did not acknowledge stays in flight in its broker session: its
replacement connects with the same client id and Mosquitto sends it those messages again, with
their packet ids and the DUP flag (checked against Mosquitto 2.0: docs/performance.md, "MQTT
direct path"). Messages are told apart by packet id and a digest of topic and payload
(`message_id`): packet ids are unique among a session's unacknowledged messages, which is
where the supervisor's fate notes (a timeout or memory kill is final) must find them again.

Only `single` mode: the subscription's lease makes one worker the holder, whose one child
reads. `multiple` mode would need shared subscriptions, and Mosquitto 2.0 neither hands a
dead member's unacknowledged messages to the others nor stops handing new ones to a member
whose session outlived its connection: they wait for that client id to come back, which a
worker that went for good never does. Such subscriptions stay on the queued path.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from fnhub.connectors.base import (
    ConnectorConfigError,
    DirectPlace,
    Message,
    SourceStatus,
    describe_error,
    stable_client_id,
)
from fnhub.connectors.mqtt.client import make_client, reason_text
from fnhub.connectors.mqtt.netloop import no_op, serve_connection, wake, wake_pair
from fnhub.connectors.mqtt.received import Received, ReceivingClient, headers_of
from fnhub.connectors.mqtt.settings import MqttSettings, MqttSourceOptions

log = logging.getLogger("fnhub.connectors.mqtt")


def check_direct(settings: MqttSettings, options: MqttSourceOptions, place: DirectPlace) -> None:
    """ConnectorConfigError naming what keeps this subscription off the direct path."""
    if place.mode != "single":
        raise ConnectorConfigError(
            "path: direct on MQTT needs mode: single (a shared subscription's messages wait "
            "in a gone member's session on Mosquitto; use path: queued for mode: multiple)"
        )
    if options.qos != 1:
        raise ConnectorConfigError(
            "qos: path: direct on MQTT needs qos 1 (QoS 0 has no acknowledgement to hold "
            "back until the function finished)"
        )
    if settings.protocol != "5" or settings.clean_start or not settings.session_expiry:
        raise ConnectorConfigError(
            "path: direct on MQTT needs protocol 5 with a persistent session (clean_start: "
            "false, session_expiry > 0): a replaced child resumes it to get its messages again"
        )


class MqttDirectConsumer:
    """One worker child's MQTT subscription, read and acknowledged a batch at a time."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        topics: list[str],
        group: str,
        consumer: str,
        options: MqttSourceOptions,
        place: DirectPlace,
    ) -> None:
        if not topics:
            raise ConnectorConfigError("topics: at least one topic filter is required")
        check_direct(settings, options, place)
        self.settings = settings
        self.options = options
        self.client_id = settings.client_id or place.client_id or stable_client_id("mqtt", group)
        self.topics = [
            f"$share/{options.share_group}/{t}"
            if options.share_group and not t.startswith("$share/")
            else t
            for t in topics
        ]
        self.window = max(1, place.window)
        self.status = SourceStatus()
        self._client: ReceivingClient | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None  # made by open()
        self._cond = threading.Condition()
        self._inbox: list[Received] = []  # read by the network thread, not yet handed out
        self._received = 0
        self._subscribed = threading.Event()
        self._lost: str | None = None  # why the connection ended (set by the network thread)
        self._handed = 0  # messages handed out and not acknowledged

    # -- the network thread -------------------------------------------------------------------
    def _serve(self, client: ReceivingClient, wake_r: socket.socket) -> None:
        try:
            rc = serve_connection(client, wake_r, lambda: self._received)
            why = self._lost or f"connection lost: {paho.error_string(rc)}"
        except Exception as exc:  # a bug or an ssl error: the child reconnects
            why = f"connection failed: {describe_error(exc)}"
        with self._cond:
            self._lost = why
            self._cond.notify_all()
        self._subscribed.set()  # wakes an open() still waiting

    def _on_received(self, pm: Received) -> None:
        self._received += 1
        with self._cond:
            self._inbox.append(pm)
            if len(self._inbox) == 1:
                self._cond.notify()

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            self._lost = f"broker refused connection: {reason_text(rc)}"
            client.disconnect()
            return
        # retainHandling 1: retained messages only for a new subscription, not a resumed one
        client.subscribe([(t, SubscribeOptions(qos=1, retainHandling=1)) for t in self.topics])

    def _on_subscribe(
        self, client: paho.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        refused = [
            f"{topic!r}: {reason_text(rc)}"
            for topic, rc in zip(self.topics, codes, strict=False)
            if rc.is_failure
        ]
        if refused:
            self._lost = "subscribe refused: " + ", ".join(refused)
            client.disconnect()
        self._subscribed.set()

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure and self._lost is None:
            self._lost = f"disconnected: {reason_text(rc)}"

    # -- the DirectConsumer interface -------------------------------------------------------
    def open(self) -> None:
        """Connect with the persistent session and subscribe; the broker then sends what this
        session holds unacknowledged (a dead predecessor's messages) first."""
        s = self.settings
        client = make_client(
            s,
            self.client_id,
            manual_ack=True,
            persistent=True,
            receive_maximum=self.window,
            client_class=ReceivingClient,
        )
        assert isinstance(client, ReceivingClient)
        client.on_received = self._on_received
        client.on_socket_register_write = no_op  # the network thread alone writes
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        self._lost = None
        self._subscribed.clear()
        self._inbox = []
        self._handed = 0
        try:
            client.reconnect()
        except Exception as exc:
            raise ConnectionError(
                f"cannot connect to MQTT broker {s.host}:{s.port}: {describe_error(exc)}"
            ) from exc
        self._client = client
        self._wake = wake_r, _w = wake_pair()
        self._thread = threading.Thread(
            target=self._serve, args=(client, wake_r), name="mqtt-direct", daemon=True
        )
        self._thread.start()
        if not self._subscribed.wait(s.connect_timeout) or self._lost:
            why = self._lost or f"no CONNACK/SUBACK within {s.connect_timeout}s"
            raise ConnectionError(f"MQTT broker {s.host}:{s.port}: {why}")
        self.status.connected()

    def inherit(self, consumers: Sequence[str]) -> None:
        """Nothing to claim: the replacement of a dead child resumes its broker session (the
        same client id), whose unacknowledged messages the broker sends again."""

    def read(self, count: int, block_ms: int) -> list[Message]:
        """Up to `count` of the messages the network thread read, waiting up to `block_ms`
        for the first; ConnectionError once the connection ended (the child reconnects)."""
        with self._cond:
            if not self._inbox and self._lost is None:
                self._cond.wait(block_ms / 1000)
            if self._lost is not None:
                raise ConnectionError(f"MQTT broker {self.settings.host}: {self._lost}")
            taken = self._inbox[:count]
            del self._inbox[:count]
        if not taken:
            return []
        now = time.time()
        client_id = self.client_id
        out = []
        for pm in taken:
            digest = hashlib.blake2b(pm.payload, digest_size=6, key=pm.topic.encode()[:64])
            msg = Message(pm.topic, pm.payload, pm.qos, now, None, {}, None, None,
                          f"{pm.mid}:{digest.hexdigest()}", client_id, pm.dup)  # fmt: skip
            if pm.properties is not None:
                msg.headers = headers_of(pm.properties)
            out.append(msg)
        self._handed = len(out)
        self.status.received += len(out)
        return out

    def ack(self, msgs: Sequence[Message]) -> None:
        """Queue the batch's PUBACKs and wake the network thread once to send them; on a
        connection that ended they are dropped (the broker sends those messages again)."""
        client = self._client
        self._handed = 0
        if client is None or not msgs or self._lost is not None:
            return
        for msg in msgs:
            assert msg.message_id is not None
            client.ack(int(msg.message_id.partition(":")[0]), 1)
        self._wake_thread()
        self.status.acked += len(msgs)

    def _wake_thread(self) -> None:
        if self._wake is not None:
            wake(self._wake[1])

    def update_lag(self) -> None:
        """MQTT tells no lag; what this child holds unacknowledged, and whether it is connected."""
        self.status.pending = self._handed + len(self._inbox)
        if self._lost is not None and self.status.state == "connected":
            self.status.disconnected("reconnecting", self._lost)

    def close(self) -> None:
        """Disconnect (the session stays, with what was not acknowledged) and end the thread."""
        client, thread = self._client, self._thread
        self._client = self._thread = None
        if client is not None:
            if self._lost is None:
                self._lost = "closed"
                client.disconnect()  # queued after the last PUBACKs
                self._wake_thread()
            if thread is not None:
                thread.join(5)
            pair, self._wake = self._wake, None
            if pair is not None and (thread is None or not thread.is_alive()):
                for end in pair:
                    end.close()
        self.status.disconnected("stopped")
