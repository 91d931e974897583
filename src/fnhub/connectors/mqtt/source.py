"""The MQTT source: see the package docstring for how it reads and acknowledges."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from fnhub.backoff import Backoff
from fnhub.connectors.base import (
    BatchHandler,
    ConnectorConfigError,
    Done,
    Message,
    RateLimitedLog,
    SourceStatus,
    Window,
    describe_error,
)
from fnhub.connectors.mqtt.client import make_client, reason_text
from fnhub.connectors.mqtt.netloop import no_op, serve_connection, wake, wake_pair
from fnhub.connectors.mqtt.received import Received, ReceivingClient, headers_of
from fnhub.connectors.mqtt.settings import (
    MqttSettings,
    MqttSourceOptions,
)

log = logging.getLogger("fnhub.connectors.mqtt")


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
        self._client = client = make_client(
            settings,
            self.client_id,
            manual_ack=True,
            persistent=True,
            receive_maximum=window,
            client_class=ReceivingClient,
        )
        assert isinstance(client, ReceivingClient)
        client.on_received = self._net_on_received  # QoS 0 and 1
        self._client.on_socket_register_write = no_op  # never write from a foreign thread
        self._client.on_connect = self._net_on_connect
        self._client.on_disconnect = self._net_on_disconnect
        self._client.on_message = self._net_on_message  # QoS 2
        self._client.on_subscribe = self._net_on_subscribe
        self._gen = 0  # connection generation, owned by the network thread
        self._ack_lock = threading.Lock()
        #: QoS >= 1 deliveries whose handler finished, PUBACKed together once per loop turn
        self._acks: list[_Delivery] = []
        #: wakes the network thread once per batch of acks (paho's own wake-up socket, made by
        #: `loop()`, would take a byte per ack; this source runs its own loop and never has it)
        self._wake_r, self._wake_w = wake_pair()
        self._received = 0  # PUBLISHes read, counted by the network thread
        self._stop_evt = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        self._backlog: collections.deque[_Delivery] = collections.deque()
        #: PUBLISHes the network thread received and the event loop has not taken yet: one
        #: wake-up of the loop per burst instead of a call_soon_threadsafe per message
        self._inbox: list[tuple[Received, int]] = []
        self._inbox_lock = threading.Lock()
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
        self._flush_acks()
        self._client.disconnect()  # queued after the acks of the handlers that finished
        self._wake()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
        if self._thread is None or not self._thread.is_alive():
            self._wake_r.close()
            self._wake_w.close()
        self.status.disconnected("stopped")
        self._stopped.set()

    def _take_inbox(self) -> None:
        with self._inbox_lock:
            received, self._inbox = self._inbox, []
        for pm, gen in received:
            self._deliver(pm, gen)
        self._pump()

    def _deliver(self, pm: Received, gen: int) -> None:
        if self._stopping:
            return
        headers = headers_of(pm.properties) if pm.properties is not None else {}
        msg = Message(
            topic=pm.topic,
            payload=pm.payload,
            qos=pm.qos,
            timestamp=time.time(),
            headers=headers,
            client_id=self.client_id,
            redelivered=pm.dup,
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

    def _pump(self) -> None:
        """Hand what the window has room for to it, in one batch."""
        room = self._window.free
        if self._stopping or room <= 0 or not self._backlog:
            return
        batch: list[tuple[Message, Done]] = []
        while self._backlog and len(batch) < room:
            d = self._backlog.popleft()
            if not d.qos:
                self._qos0_backlog -= 1
            batch.append((d.msg, functools.partial(self._done, d)))
        self._window.spawn_many(batch)

    def _done(self, d: _Delivery, _msg: Message, ok: bool) -> None:
        if d.qos and self._by_mid.get(d.mid) is d:
            del self._by_mid[d.mid]
        if not ok:
            return
        for one in (d, *d.attached):
            self._ack(one)

    def _ack(self, d: _Delivery) -> None:
        if not d.qos:
            self.status.acked += 1
            return
        self._acks.append(d)
        if len(self._acks) == 1 and self._loop is not None:
            self._loop.call_soon(self._flush_acks)  # after the rest of the settled batch

    def _flush_acks(self) -> None:
        """Queue the PUBACKs of every handler that finished since the last flush, then wake the
        network thread once to write them."""
        acks, self._acks = self._acks, []
        if not acks:
            return
        sent = 0
        with self._ack_lock:
            for d in acks:
                if d.gen == self._gen:  # else the connection is gone; the broker redelivers it
                    self._client.ack(d.mid, d.qos)
                    sent += 1
        self.status.acked += sent
        if sent:
            self._wake()

    def _wake(self) -> None:
        wake(self._wake_w)

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
                rc = self._net_serve()
                error = self._net_error or f"connection lost: {paho.error_string(rc)}"
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

    def _net_serve(self) -> MQTTErrorCode:
        """Run the connection until it ends (`netloop`); acks queued by the event loop wake it
        once per batch (`_flush_acks`)."""
        return serve_connection(self._client, self._wake_r, self._received_count)

    def _received_count(self) -> int:
        return self._received

    def _net_on_connect(
        self, client: paho.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Any
    ) -> None:
        if rc.is_failure:
            self._net_error = f"broker refused connection: {reason_text(rc)}"
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
                text = f"subscribe to {topic!r} refused: {reason_text(rc)}"
                log.error("mqtt source %s: %s", self.client_id, text)
                self._call(self._set_status, None, text)

    def _net_on_disconnect(self, _c: Any, _u: Any, _flags: Any, rc: ReasonCode, _p: Any) -> None:
        if not self._stop_evt.is_set() and rc.is_failure and self._net_error is None:
            self._net_error = f"disconnected: {reason_text(rc)}"

    def _net_on_message(self, _c: Any, _u: Any, pm: paho.MQTTMessage) -> None:
        payload, props = bytes(pm.payload), getattr(pm, "properties", None)
        self._net_on_received(Received(pm.topic, payload, pm.qos, pm.mid, bool(pm.dup), props))

    def _net_on_received(self, pm: Received) -> None:
        self._received += 1
        with self._inbox_lock:
            self._inbox.append((pm, self._gen))
            first = len(self._inbox) == 1
        if first:
            self._call(self._take_inbox)
