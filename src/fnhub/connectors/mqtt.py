"""MQTT source and publishers on paho-mqtt 2.x (MQTT 5 by default, 3.1.1 on request).

The source holds a persistent session (clean_start False, a session expiry and a stable client
id), subscribes with QoS 1 by default and acks manually after the handler: the broker redelivers
whatever was not acked when a server dies. MQTT 5 `ReceiveMaximum` = window makes the broker stop
sending QoS >= 1 messages while the window is full. QoS 0 messages cannot be pushed back; they
wait in a bounded buffer whose overflow is counted in `status.dropped`.

paho runs its network loop in a private thread (one per source or publisher); callbacks are
bridged to asyncio with `call_soon_threadsafe`. Writes from other threads only queue packets and
wake that thread, so one thread owns the socket.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from fnhub.connectors.base import (
    Backoff,
    BatchHandler,
    ConnectorConfigError,
    ConnectorError,
    ConnectorType,
    Message,
    RateLimitedLog,
    SourceStatus,
    Window,
    describe_error,
    encode_payload,
    parse_model,
    register,
)
from fnhub.connectors.settings import (
    MqttPublishOptions,
    MqttSettings,
    MqttSourceOptions,
    tls_options,
)

log = logging.getLogger("fnhub.connectors.mqtt")


def _reason_text(rc: ReasonCode | int) -> str:
    if isinstance(rc, ReasonCode):
        return f"{rc.getName()} ({rc.value})"
    return paho.error_string(rc)


def make_client(
    s: MqttSettings,
    client_id: str,
    *,
    manual_ack: bool = False,
    persistent: bool = False,
    receive_maximum: int | None = None,
    auto_reconnect: bool = False,
) -> paho.Client:
    """A configured (not yet connected) paho client; `connect_async` stores where to connect."""
    v5 = s.protocol == "5"
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else (s.clean_start or not persistent),
        manual_ack=manual_ack,
        reconnect_on_failure=auto_reconnect,
    )
    client.connect_timeout = s.connect_timeout
    if s.username is not None:
        client.username_pw_set(s.username, s.password)
    tls = tls_options(s.tls)
    if tls is not None:
        client.tls_set_context(tls.context())
        if tls.insecure:
            client.tls_insecure_set(True)
    props = None
    if v5:
        props = Properties(PacketTypes.CONNECT)
        if persistent and s.session_expiry:
            props.SessionExpiryInterval = s.session_expiry
        if receive_maximum:
            props.ReceiveMaximum = min(receive_maximum, 65535)
    client.connect_async(
        s.host,
        s.port,
        keepalive=s.keepalive,
        clean_start=(s.clean_start or not persistent) if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
        properties=props,
    )
    return client


# --- source ---------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Delivery:
    """One PUBLISH received on connection generation `gen`; acked only on that connection."""

    mid: int
    qos: int
    gen: int
    msg: Message
    attached: list[_Delivery] = field(default_factory=list)


class MqttSource:
    """Subscribe with a persistent session and ack each message after its handler returned."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        topics: list[str],
        window: int,
        client_id: str,
        options: MqttSourceOptions,
    ) -> None:
        if not topics:
            raise ConnectorConfigError("topics: at least one topic filter is required")
        self.settings = settings
        self.options = options
        self.client_id = settings.client_id or client_id
        self.topics = [
            f"$share/{options.share_group}/{t}"
            if options.share_group and not t.startswith("$share/")
            else t
            for t in topics
        ]
        self.status = SourceStatus()
        self._window = Window(window, self.status)
        self._window.on_release = self._pump
        self._client = make_client(
            settings,
            self.client_id,
            manual_ack=True,
            persistent=True,
            receive_maximum=window,
        )
        self._client.on_socket_register_write = _no_op  # never write from a foreign thread
        self._client.on_connect = self._net_on_connect
        self._client.on_disconnect = self._net_on_disconnect
        self._client.on_message = self._net_on_message
        self._client.on_subscribe = self._net_on_subscribe
        self._gen = 0  # connection generation, owned by the network thread
        self._ack_lock = threading.Lock()
        self._stop_evt = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        self._backlog: collections.deque[_Delivery] = collections.deque()
        self._qos0_backlog = 0
        self._by_mid: dict[int, _Delivery] = {}  # in-flight QoS>=1 deliveries of this session
        self._drop_log = RateLimitedLog()

    # asyncio side ---------------------------------------------------------------------------

    async def run(self, handler: BatchHandler) -> None:
        if self._stopping:
            return
        self._loop = asyncio.get_running_loop()
        self._window.handler = handler
        self.status.state = "connecting"
        self._thread = threading.Thread(
            target=self._net_main, name=f"mqtt-source-{self.client_id}", daemon=True
        )
        self._thread.start()
        try:
            await self._stopped.wait()
        finally:
            if not self._stopped.is_set():  # cancelled: shut down without waiting for handlers
                await self._shutdown(drain_timeout=0)

    async def stop(self) -> None:
        await self._shutdown(self.options.drain_timeout)

    async def _shutdown(self, drain_timeout: float) -> None:
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self._stop_evt.set()  # the network thread will not reconnect any more
        self._backlog.clear()  # never handed out: the broker redelivers them
        await self._window.drain(drain_timeout)
        self._client.disconnect()  # queued after the acks of the handlers that finished
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
        self.status.disconnected("stopped")
        self._stopped.set()

    def _deliver(self, pm: paho.MQTTMessage, gen: int) -> None:
        if self._stopping:
            return
        headers: dict[str, bytes] = {}
        props = getattr(pm, "properties", None)
        if props is not None:
            for k, v in getattr(props, "UserProperty", []) or []:
                headers[k] = v.encode() if isinstance(v, str) else bytes(v)
            ct = getattr(props, "ContentType", None)
            if ct:
                headers.setdefault("content-type", ct.encode())
        msg = Message(
            topic=pm.topic,
            payload=bytes(pm.payload),
            qos=pm.qos,
            timestamp=time.time(),
            headers=headers,
            client_id=self.client_id,
            redelivered=bool(pm.dup),
        )
        d = _Delivery(pm.mid, pm.qos, gen, msg)
        if d.qos:
            running = self._by_mid.get(d.mid)
            if running is not None:
                # Same packet id while the first copy is still being handled: a redelivery
                # after reconnect. Ack this copy when the running handler finishes.
                running.attached.append(d)
                return
            self._by_mid[d.mid] = d
        elif self._backlog or self._window.free <= 0:
            if self._qos0_backlog >= self.options.buffer:
                self.status.dropped += 1
                self._drop_log.warning(
                    "mqtt source %s: buffer full (%d), QoS 0 message dropped (total %d)",
                    self.client_id,
                    self.options.buffer,
                    self.status.dropped,
                )
                return
            self._qos0_backlog += 1
        self._backlog.append(d)
        self._pump()

    def _pump(self) -> None:
        while self._backlog and self._window.free > 0 and not self._stopping:
            d = self._backlog.popleft()
            if not d.qos:
                self._qos0_backlog -= 1
            self._window.spawn(d.msg, functools.partial(self._done, d))

    def _done(self, d: _Delivery, _msg: Message, ok: bool) -> None:
        if d.qos and self._by_mid.get(d.mid) is d:
            del self._by_mid[d.mid]
        if not ok:
            return
        for one in (d, *d.attached):
            self._ack(one)

    def _ack(self, d: _Delivery) -> None:
        if d.qos:
            with self._ack_lock:
                if d.gen != self._gen:
                    return  # connection gone; the broker will redeliver it
                self._client.ack(d.mid, d.qos)
        self.status.acked += 1

    def _on_session(self, session_present: bool) -> None:
        # Deliveries of an older connection that were never handed out will be resent.
        if self._backlog:
            kept: collections.deque[_Delivery] = collections.deque()
            for d in self._backlog:
                if not d.qos or d.gen == self._gen:
                    kept.append(d)
                elif self._by_mid.get(d.mid) is d:
                    del self._by_mid[d.mid]
            self._backlog = kept
        if not session_present:
            self._by_mid.clear()  # packet ids of a lost session mean nothing now

    def _set_status(self, state: str | None, error: str | None) -> None:
        if state is not None and not self._stopping:
            self.status.disconnected(state, error)
        elif error:
            self.status.error(error)

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    # network thread -------------------------------------------------------------------------

    def _net_main(self) -> None:
        backoff = Backoff(cap=self.options.reconnect_max)
        while not self._stop_evt.is_set():
            error: str | None = None
            self._connected_at = 0.0
            try:
                self._client.reconnect()
                while True:
                    rc = self._client.loop(timeout=0.5)
                    if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        error = self._net_error or f"connection lost: {paho.error_string(rc)}"
                        break
            except Exception as exc:  # OSError, ssl errors, socket timeouts
                error = f"cannot connect to {self.settings.host}:{self.settings.port}: " + (
                    describe_error(exc)
                )
            with self._ack_lock:
                self._gen += 1
            self._net_error = None
            if self._stop_evt.is_set():
                break
            self._call(self._set_status, "reconnecting", error)
            if self._connected_at and time.monotonic() - self._connected_at > 5:
                backoff.reset()
            log.warning("mqtt source %s: %s", self.client_id, error)
            self._stop_evt.wait(backoff.next())

    _net_error: str | None = None
    _connected_at: float = 0.0

    def _net_on_connect(
        self, client: paho.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Any
    ) -> None:
        if rc.is_failure:
            self._net_error = f"broker refused connection: {_reason_text(rc)}"
            return
        self._connected_at = time.monotonic()
        self._call(self._on_session, bool(flags.session_present))
        qos = self.options.qos
        if self.settings.protocol == "5":
            # retainHandling 1: retained messages only for a new subscription, not a resumed one
            client.subscribe(
                [(t, SubscribeOptions(qos=qos, retainHandling=1)) for t in self.topics]
            )
        else:
            client.subscribe([(t, qos) for t in self.topics])

    def _net_on_subscribe(
        self, _c: Any, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        if any(not rc.is_failure for rc in codes):
            self._call(self.status.connected)  # subscribed: publishes from now on reach us
        for topic, rc in zip(self.topics, codes, strict=False):
            if rc.is_failure:
                text = f"subscribe to {topic!r} refused: {_reason_text(rc)}"
                log.error("mqtt source %s: %s", self.client_id, text)
                self._call(self._set_status, None, text)

    def _net_on_disconnect(self, _c: Any, _u: Any, _flags: Any, rc: ReasonCode, _p: Any) -> None:
        if not self._stop_evt.is_set() and rc.is_failure and self._net_error is None:
            self._net_error = f"disconnected: {_reason_text(rc)}"

    def _net_on_message(self, _c: Any, _u: Any, pm: paho.MQTTMessage) -> None:
        self._call(self._deliver, pm, self._gen)


def _no_op(*_args: Any) -> None:
    return None


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
            items = value.items() if isinstance(value, dict) else value
            props.UserProperty = [(str(k), str(v)) for k, v in items]  # type: ignore[union-attr]
        elif key in names:
            if key == "correlation_data" and isinstance(value, str):
                value = value.encode()
            setattr(props, names[key], value)
        else:
            raise ConnectorConfigError(
                f"properties.{key}: unknown (use {', '.join(['user_properties', *names])})"
            )
    return props


class _PahoPublisher:
    """A connected paho client on its own network thread, with per-mid completion waiters."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        client_id = f"{settings.client_id or 'fnhub-pub'}-{uuid.uuid4().hex[:12]}"
        self.client = make_client(settings, client_id, auto_reconnect=True)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        self._lock = threading.Lock()
        self._waiters: dict[int, Callable[[ReasonCode | None], None]] = {}
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
            self._refused = _reason_text(rc)
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

    def register(self, mid: int, waiter: Callable[[ReasonCode | None], None]) -> None:
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
        raise ConnectorError(f"MQTT broker rejected publish to {topic!r}: {_reason_text(rc)}")


class MqttPublisher:
    """Synchronous publisher; waits for PUBACK/PUBCOMP on QoS >= 1 (option `timeout`)."""

    def __init__(self, settings: MqttSettings) -> None:
        self._core = _PahoPublisher(settings)
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

    def __init__(self, core: _PahoPublisher) -> None:
        self._core = core

    @classmethod
    async def open(cls, settings: MqttSettings) -> AsyncMqttPublisher:
        core = _PahoPublisher(settings)
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


# --- registry -------------------------------------------------------------------------------


def create_source(
    settings: MqttSettings,
    *,
    topics: list[str],
    window: int,
    group: str | None,
    client_id: str,
    options: dict[str, Any],
) -> MqttSource:
    opts = parse_model(MqttSourceOptions, options, "mqtt source options")
    return MqttSource(settings, topics=topics, window=window, client_id=client_id, options=opts)


async def test_connection(settings: MqttSettings, timeout: float) -> None:
    s = settings.model_copy(update={"connect_timeout": timeout})

    def probe() -> None:
        core = _PahoPublisher(s)
        core.start()
        core.close()

    try:
        await asyncio.wait_for(asyncio.to_thread(probe), timeout + 1)
    except TimeoutError:
        raise ConnectorError(
            f"MQTT broker {s.host}:{s.port}: no answer within {timeout}s"
        ) from None


async def _open_async(settings: MqttSettings) -> AsyncMqttPublisher:
    return await AsyncMqttPublisher.open(settings)


test_connection.__test__ = False  # type: ignore[attr-defined]

register(
    ConnectorType(
        name="mqtt",
        settings_model=MqttSettings,
        create_source=create_source,
        test_connection=test_connection,  # type: ignore[arg-type]
        create_publisher=MqttPublisher,  # type: ignore[arg-type]
        create_async_publisher=_open_async,  # type: ignore[arg-type]
    )
)
