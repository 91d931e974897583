"""The NATS JetStream source: a durable pull consumer read through one pull request at a time.

A pull request asks for as many messages as the window has room for (at most `max_batch`) and
lingers up to `expires` while they arrive, so a message after a quiet spell is handed over at
once and the window never holds more than it can. Each message is acked (+ACK) only after its
handler finished; the ones still in flight are touched (+WPI) every third of `ack_wait` so a
slow function is not redelivered meanwhile. What was never acked — a server killed mid-burst —
is redelivered to the durable consumer after `ack_wait`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from fnhub.aio import wait_event
from fnhub.backoff import Backoff
from fnhub.connectors.base import (
    ConnectorConfigError,
    ConnectorError,
    Message,
    ReadingSource,
    describe_error,
)
from fnhub.connectors.nats.client import connect, ensure_consumer, stream_of, where
from fnhub.connectors.nats.settings import NatsSettings, NatsSourceOptions
from fnhub.supervised import spawn

log = logging.getLogger("fnhub.connectors.nats")

STATUS = "Status"
HEARTBEAT = "100"


class _Pull:
    """One outstanding pull request: done when all `asked` arrived or the server ended it."""

    __slots__ = ("asked", "done", "got")

    def __init__(self, asked: int) -> None:
        self.asked = asked
        self.got = 0
        self.done = asyncio.Event()


class NatsSource(ReadingSource):
    def __init__(
        self,
        settings: NatsSettings,
        *,
        topics: list[str],
        window: int,
        durable: str,
        client_id: str,
        options: NatsSourceOptions,
    ) -> None:
        if not topics:
            raise ConnectorConfigError("topics: at least one subject is required")
        super().__init__(window, options.drain_timeout)
        self.settings = settings
        self.topics = topics
        self.durable = durable
        self.client_id = client_id
        self.options = options
        self._nc: Client | None = None
        self._pull: _Pull | None = None
        self._held: dict[str | None, tuple[Msg, float]] = {}  # message_id -> (msg, taken at)
        self._acks: list[Msg] = []
        self._overflow: collections.deque[Msg] = collections.deque()
        self._window.on_release = self._pump
        self._toucher: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    # -- connection -------------------------------------------------------------------------
    async def _read_forever(self) -> None:
        backoff = Backoff(cap=self.options.reconnect_max)
        while not self._stopping:
            self.status.state = "connecting" if self.status.state == "idle" else "reconnecting"
            started = time.monotonic()
            try:
                self._nc = nc = await connect(
                    self.settings,
                    self.client_id,
                    on_disconnect=self._on_disconnect,
                    on_reconnect=self._on_reconnect,
                    on_error=self._on_error,
                )
                js = nc.jetstream()
                stream = await stream_of(js, self.topics, self.options)
                await ensure_consumer(js, stream, self.durable, self.topics, self.options)
                inbox = nc.new_inbox()
                await nc.subscribe(inbox, cb=self._on_msg, pending_msgs_limit=-1)
                self.status.connected()
                self._toucher = spawn("nats-touch", self._touch_loop, label=self.client_id)
                await self._pull_forever(
                    nc, f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{self.durable}", inbox
                )
            except ConnectorError as exc:  # names the server (and the setting) itself
                self.status.disconnected("reconnecting", str(exc))
                log.warning("nats source %s: %s", self.client_id, exc)
            except (NatsError, OSError, TimeoutError) as exc:
                text = f"nats {where(self.settings)}: {describe_error(exc)}"
                log.warning("nats source %s: %s", self.client_id, text)
                self.status.disconnected("reconnecting", text)
            finally:
                if not self._stopping:  # at stop the window drains first, acking on this one
                    await self._close_connection()
            if time.monotonic() - started > 10:
                backoff.reset()
            await asyncio.sleep(backoff.next())

    async def _on_disconnect(self) -> None:
        if not self._stopping and self.status.state == "connected":
            self.status.disconnected("reconnecting", f"nats {where(self.settings)}: disconnected")
        self._end_pull()

    async def _on_reconnect(self) -> None:
        log.info("nats source %s: reconnected", self.client_id)
        self.status.connected()
        self._end_pull()  # the pull request may be gone with the old connection: ask again

    async def _on_error(self, exc: Exception) -> None:
        self.status.error(f"nats {where(self.settings)}: {describe_error(exc)}")

    def _end_pull(self) -> None:
        if self._pull is not None:
            self._pull.done.set()

    # -- reading ----------------------------------------------------------------------------
    async def _pull_forever(self, nc: Client, next_subject: str, inbox: str) -> None:
        window = self._window
        o = self.options
        expires_ns = int(o.expires * 1e9)
        while True:
            if not nc.is_connected:
                await asyncio.sleep(0.05)
                continue
            await window.wait_room(n=min(window.refill, window.size))
            room = window.free - len(self._overflow)
            if room <= 0:
                await asyncio.sleep(0.01)
                continue
            pull = self._pull = _Pull(min(room, o.max_batch))
            request = {"batch": pull.asked, "expires": expires_ns}
            await nc.publish(next_subject, json.dumps(request).encode(), reply=inbox)
            await wait_event(pull.done, o.expires + 2)

    async def _on_msg(self, msg: Msg) -> None:
        pull = self._pull
        headers = msg.headers
        if headers and STATUS in headers and not msg.data:
            status = headers[STATUS]
            if status != HEARTBEAT and pull is not None:
                if status not in ("404", "408"):
                    log.info(
                        "nats source %s: pull ended: %s %s",
                        self.client_id,
                        status,
                        headers.get("Description", ""),
                    )
                pull.done.set()
            return
        if pull is not None:
            pull.got += 1
            if pull.got >= pull.asked:
                pull.done.set()
        if self._overflow or self._window.free <= 0 or self._stopping:
            self._overflow.append(msg)  # a late answer to an earlier request: handed out later
            return
        self._spawn(msg)

    def _spawn(self, msg: Msg) -> None:
        meta = msg.metadata
        message = Message(
            topic=msg.subject,
            payload=msg.data,
            qos=1,
            timestamp=meta.timestamp.timestamp(),
            headers={k: v.encode() for k, v in (msg.headers or {}).items()},
            message_id=f"{meta.stream}:{meta.sequence.stream}",
            client_id=self.client_id,
            redelivered=meta.num_delivered > 1,
            offset=meta.sequence.stream,
        )
        self._held[message.message_id] = (msg, time.monotonic())
        self._window.spawn(message, self._done)

    def _pump(self) -> None:
        while self._overflow and self._window.free > 0 and not self._stopping:
            self._spawn(self._overflow.popleft())

    # -- acknowledging ----------------------------------------------------------------------
    def _done(self, msg: Message, ok: bool) -> None:
        entry = self._held.pop(msg.message_id, None)
        if entry is None or not ok:  # left unacked: redelivered after ack_wait
            return
        if not self._acks:
            asyncio.get_running_loop().call_soon(self._flush_acks)
        self._acks.append(entry[0])

    def _flush_acks(self) -> None:
        acks, self._acks = self._acks, []
        nc = self._nc
        if nc is None or not acks:
            return
        task = asyncio.get_running_loop().create_task(self._send_acks(nc, acks))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_acks(self, nc: Client, acks: list[Msg]) -> None:
        try:
            for m in acks:
                await nc.publish(m.reply, b"+ACK")
            self.status.acked += len(acks)
        except (NatsError, OSError) as exc:  # redelivered after ack_wait: at least once
            log.warning("nats source %s: %d acks not sent: %s", self.client_id, len(acks), exc)

    async def _touch_loop(self) -> None:
        """Tell the server the messages still in flight are being worked on (+WPI)."""
        every = self.options.ack_wait / 3
        while True:
            await asyncio.sleep(every)
            nc = self._nc
            if nc is None or not nc.is_connected:
                continue
            old = time.monotonic() - every
            with contextlib.suppress(NatsError, OSError):
                for m, since in list(self._held.values()):
                    if since <= old and m.reply:
                        await nc.publish(m.reply, b"+WPI")

    # -- closing ----------------------------------------------------------------------------
    def _before_drain(self) -> None:
        self._overflow.clear()

    async def _close(self) -> None:
        self._flush_acks()
        if self._sending:
            await asyncio.wait(self._sending, timeout=5)
        await self._close_connection()

    async def _close_connection(self) -> None:
        if self._toucher is not None:
            self._toucher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._toucher
            self._toucher = None
        nc, self._nc = self._nc, None
        self._pull = None
        if nc is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.flush(), 2)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), 5)
        self._held.clear()
        self._overflow.clear()
