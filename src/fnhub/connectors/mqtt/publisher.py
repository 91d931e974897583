"""MQTT publishers, sync (scripts, on a private thread or loop) and async (rules' outputs)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fnhub.connectors.base import (
    ConnectorConfigError,
    ConnectorError,
    describe_error,
    encode_payload,
    parse_model,
)
from fnhub.connectors.mqtt.client import make_client, reason_text
from fnhub.connectors.mqtt.settings import (
    MqttPublishOptions,
    MqttSettings,
)

log = logging.getLogger("fnhub.connectors.mqtt")


# --- publishers -----------------------------------------------------------------------------


def _publish_properties(s: MqttSettings, opts: MqttPublishOptions) -> Properties | None:
    if not opts.properties:
        return None
    if s.protocol != "5":
        raise ConnectorConfigError("properties: publish properties need protocol '5'")
    props = Properties(PacketTypes.PUBLISH)
    names = {
        "content_type": "ContentType",
        "message_expiry": "MessageExpiryInterval",
        "message_expiry_interval": "MessageExpiryInterval",
        "response_topic": "ResponseTopic",
        "correlation_data": "CorrelationData",
        "payload_format_indicator": "PayloadFormatIndicator",
    }
    for key, value in opts.properties.items():
        if key == "user_properties":
            if isinstance(value, dict):
                pairs: Iterable[Any] = value.items()
            elif isinstance(value, Iterable):
                pairs = value
            else:
                raise ConnectorConfigError("properties: user_properties are name: value pairs")
            props.UserProperty = [(str(k), str(v)) for k, v in pairs]
        elif key in names:
            if key == "correlation_data" and isinstance(value, str):
                value = value.encode()
            setattr(props, names[key], value)
        else:
            raise ConnectorConfigError(
                f"properties.{key}: unknown (use {', '.join(['user_properties', *names])})"
            )
    return props


class PahoPublisher:
    """A connected paho client on its own network thread, with per-mid completion waiters."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        client_id = f"{settings.client_id or 'fnhub-pub'}-{uuid.uuid4().hex[:12]}"
        self.client = make_client(settings, client_id, auto_reconnect=True)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        self._lock = threading.Lock()
        self._waiters: dict[int, Callable[[ReasonCode | None], object]] = {}
        self._early: collections.OrderedDict[int, ReasonCode | None] = collections.OrderedDict()
        self._connected = threading.Event()
        self._refused: str | None = None

    def start(self) -> None:
        """Connect and wait for CONNACK; paho's own loop reconnects after later outages."""
        s = self.settings
        try:
            self.client.reconnect()
        except Exception as exc:
            raise ConnectorError(
                f"cannot connect to MQTT broker {s.host}:{s.port}: {describe_error(exc)}"
            ) from exc
        self.client.loop_start()
        if not self._connected.wait(s.connect_timeout) or self._refused:
            self.close()
            raise ConnectorError(
                f"MQTT broker {s.host}:{s.port} did not accept the connection: "
                f"{self._refused or 'no CONNACK within timeout'}"
            )

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, rc: ReasonCode, p: Any) -> None:
        if rc.is_failure:
            self._refused = reason_text(rc)
        else:
            # paho ignores the broker's Receive Maximum: send that many QoS>0 messages at once
            # (mosquitto's default for 3.1.1 clients is 20).
            # The public setter refuses an open connection, hence the attribute.
            limit = getattr(p, "ReceiveMaximum", None) if self.settings.protocol == "5" else 20
            client._max_inflight_messages = min(limit or 65535, 1000)
            log.debug("mqtt publisher: broker receive maximum %s", limit)
        self._connected.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode | None, _p: Any) -> None:
        with self._lock:
            waiter = self._waiters.pop(mid, None)
            if waiter is None:  # publish() has not registered yet (or did not wait: QoS 0)
                self._early[mid] = rc
                if len(self._early) > 4096:
                    self._early.popitem(last=False)
        if waiter is not None:
            waiter(rc)

    def send(
        self, topic: str, message: Any, options: dict[str, Any]
    ) -> tuple[paho.MQTTMessageInfo, MqttPublishOptions]:
        opts = parse_model(MqttPublishOptions, options, "mqtt publish options")
        info = self.client.publish(
            topic,
            encode_payload(message),
            qos=opts.qos,
            retain=opts.retain,
            properties=_publish_properties(self.settings, opts),
        )
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and opts.qos == 0:
            raise ConnectorError(f"MQTT broker {self.settings.host} not connected; message lost")
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise ConnectorError(f"MQTT publish to {topic!r} failed: {paho.error_string(info.rc)}")
        return info, opts

    def register(self, mid: int, waiter: Callable[[ReasonCode | None], object]) -> None:
        with self._lock:
            if mid in self._early:
                rc = self._early.pop(mid)
            else:
                self._waiters[mid] = waiter
                return
        waiter(rc)

    def unregister(self, mid: int) -> None:
        with self._lock:
            self._waiters.pop(mid, None)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        with contextlib.suppress(Exception):
            self.client.loop_stop()


def _check_reason(topic: str, rc: ReasonCode | None) -> None:
    # 16 = "No matching subscribers": delivered to the broker, just nobody listening.
    if rc is not None and rc.is_failure:
        raise ConnectorError(f"MQTT broker rejected publish to {topic!r}: {reason_text(rc)}")


class MqttPublisher:
    """Synchronous publisher; waits for PUBACK/PUBCOMP on QoS >= 1 (option `timeout`)."""

    def __init__(self, settings: MqttSettings) -> None:
        self._core = PahoPublisher(settings)
        self._core.start()

    def publish(self, topic: str, message: Any, **options: Any) -> None:
        info, opts = self._core.send(topic, message, options)
        if opts.qos == 0:
            return
        done = threading.Event()
        result: list[ReasonCode | None] = []

        def waiter(rc: ReasonCode | None) -> None:
            result.append(rc)
            done.set()

        self._core.register(info.mid, waiter)
        if not done.wait(opts.timeout):
            self._core.unregister(info.mid)
            raise ConnectorError(
                f"MQTT publish to {topic!r}: no acknowledgement within {opts.timeout}s"
            )
        _check_reason(topic, result[0])

    def close(self) -> None:
        self._core.close()


def _time_out(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class AsyncMqttPublisher:
    """Asynchronous publisher for the server; paho's thread resolves futures per message id."""

    def __init__(self, core: PahoPublisher) -> None:
        self._core = core

    @classmethod
    async def open(cls, settings: MqttSettings) -> AsyncMqttPublisher:
        core = PahoPublisher(settings)
        await asyncio.to_thread(core.start)
        return cls(core)

    async def publish(self, topic: str, message: Any, **options: Any) -> None:
        info, opts = self._core.send(topic, message, options)
        if opts.qos == 0:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[ReasonCode | None] = loop.create_future()

        def resolve(rc: ReasonCode | None) -> None:
            if not fut.done():
                fut.set_result(rc)

        self._core.register(info.mid, lambda rc: loop.call_soon_threadsafe(resolve, rc))
        # a timer, not asyncio.wait_for: that wraps every publish in a task of its own
        timer = loop.call_later(opts.timeout, _time_out, fut)
        try:
            rc = await fut
        except TimeoutError:
            self._core.unregister(info.mid)
            raise ConnectorError(
                f"MQTT publish to {topic!r}: no acknowledgement within {opts.timeout}s"
            ) from None
        finally:
            timer.cancel()
        _check_reason(topic, rc)

    async def close(self) -> None:
        await asyncio.to_thread(self._core.close)
