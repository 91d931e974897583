"""The RabbitMQ source: a durable queue bound to the connector's exchange with the
subscription's topics as binding keys, consumed with manual acks and `prefetch` = window.

The broker never has more than a window of unacknowledged messages out to one consumer, so
the window cannot overflow; each is acked once its handler finished — finished runs of delivery
tags with one `basic.ack multiple` (a frame and a write per message cost more than the rest of
the path), what finished beyond a failed message one by one. Messages
unacked when a server dies or the connection drops go back to the queue, marked redelivered.
In `single` mode one server consumes (the runner's lease); in `multiple` mode every server
consumes the same queue and RabbitMQ hands each message to one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError

from fnhub.backoff import Backoff
from fnhub.connectors.base import (
    ConnectorConfigError,
    Message,
    ReadingSource,
    describe_error,
)
from fnhub.connectors.rabbitmq.client import connect, declare_exchange, where
from fnhub.connectors.rabbitmq.settings import RabbitmqSettings, RabbitmqSourceOptions

log = logging.getLogger("fnhub.connectors.rabbitmq")


class RabbitmqSource(ReadingSource):
    def __init__(
        self,
        settings: RabbitmqSettings,
        *,
        topics: list[str],
        window: int,
        queue: str,
        client_id: str,
        options: RabbitmqSourceOptions,
    ) -> None:
        if not topics:
            raise ConnectorConfigError("topics: at least one routing key is required")
        super().__init__(window, options.drain_timeout)
        self.settings = settings
        self.topics = topics
        self.queue = queue
        self.client_id = client_id
        self.options = options
        self._connection: AbstractRobustConnection | None = None
        self._acks = _Acks()
        self._held: dict[int, tuple[AbstractIncomingMessage, _Acks]] = {}  # id(Message) -> ...
        self._flushing = False

    async def _read_forever(self) -> None:
        backoff = Backoff(cap=self.options.reconnect_max)
        while not self._stopping:
            self.status.state = "connecting" if self.status.state == "idle" else "reconnecting"
            try:
                self._connection = connection = await connect(self.settings, self.client_id)
                connection.close_callbacks.add(self._on_close)
                connection.reconnect_callbacks.add(self._on_reconnect)
                channel = await connection.channel(publisher_confirms=False)
                await channel.set_qos(prefetch_count=self._window.size)
                exchange = await declare_exchange(channel, self.settings)
                queue = await channel.declare_queue(
                    self.queue, durable=True, arguments=self.options.arguments
                )
                for key in self.topics:
                    await queue.bind(exchange, routing_key=key)
                await queue.consume(self._on_message, consumer_tag=self.client_id)
                self.status.connected()
                await asyncio.Event().wait()  # aio-pika reconnects and re-consumes by itself
            except (AMQPError, OSError, TimeoutError) as exc:
                text = f"rabbitmq {where(self.settings)}: {describe_error(exc)}"
                log.warning("rabbitmq source %s: %s", self.client_id, text)
                self.status.disconnected("reconnecting", text)
                await self._close_connection()
            await asyncio.sleep(backoff.next())

    async def _on_close(self, _sender: Any, exc: BaseException | None = None) -> None:
        if self._stopping:
            return
        text = f"rabbitmq {where(self.settings)}: " + (
            describe_error(exc) if exc else "connection closed"
        )
        self.status.disconnected("reconnecting", text)
        self._held.clear()  # their delivery tags died with the channel: redelivered
        self._acks = _Acks()  # tags start again at 1 on the next channel

    async def _on_reconnect(self, _sender: Any) -> None:
        log.info("rabbitmq source %s: reconnected", self.client_id)
        self.status.connected()

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        msg = Message(
            topic=incoming.routing_key or "",
            payload=incoming.body,
            qos=1,
            timestamp=incoming.timestamp.timestamp() if incoming.timestamp else time.time(),
            headers={
                k: v if isinstance(v, bytes) else str(v).encode()
                for k, v in (incoming.headers or {}).items()
            },
            message_id=incoming.message_id,
            client_id=self.client_id,
            redelivered=bool(incoming.redelivered),
        )
        self._held[id(msg)] = (incoming, self._acks)
        self._window.spawn(msg, self._done)

    def _done(self, msg: Message, ok: bool) -> None:
        held = self._held.pop(id(msg), None)
        if held is None:
            return
        incoming, acks = held
        if acks is not self._acks or incoming.delivery_tag is None:
            return  # delivered on a channel since closed: the broker delivers it again
        acks.settle(incoming.delivery_tag, ok, incoming.channel)
        if ok and not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush_acks)

    def _flush_acks(self) -> None:
        self._flushing = False
        try:
            self.status.acked += self._acks.flush()
        except (AMQPError, ChannelInvalidStateError, OSError, RuntimeError) as exc:
            log.warning("rabbitmq source %s: acks not sent (redelivered): %s", self.client_id, exc)

    async def _close(self) -> None:
        self._flush_acks()
        await asyncio.sleep(0.05)  # let the connection's writer send them
        await self._close_connection()

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._held.clear()
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)


class _Acks:
    """Acknowledgements on one channel, whose delivery tags count up from 1."""

    __slots__ = ("channel", "failed", "ok", "upto")

    def __init__(self) -> None:
        self.upto = 0  # every tag up to this one is acked
        self.ok: set[int] = set()  # finished above `upto`, not acked yet
        self.failed: set[int] = set()  # never acked (back in the queue when the channel closes)
        self.channel: Any = None

    def settle(self, tag: int, ok: bool, channel: Any) -> None:
        (self.ok if ok else self.failed).add(tag)
        self.channel = channel

    def flush(self) -> int:
        """Send what can be acked; returns how many messages that was."""
        if not self.ok or self.channel is None:
            return 0
        top = self.upto
        while top + 1 in self.ok:
            top += 1
        sent = 0
        if top > self.upto:
            self.ok.difference_update(range(self.upto + 1, top + 1))
            self._send(top, multiple=True)
            sent, self.upto = top - self.upto, top
        if self.upto + 1 in self.failed:  # the run is stuck below a failed message
            for tag in sorted(self.ok):
                self._send(tag, multiple=False)
            sent += len(self.ok)
            self.ok.clear()
        return sent

    def _send(self, tag: int, *, multiple: bool) -> None:
        # queued for the connection's writer; not awaited one by one (each would hold its
        # prefetch slot for a loop turn)
        task = asyncio.ensure_future(self.channel.basic_ack(tag, multiple=multiple, wait=False))
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("rabbitmq ack not sent (redelivered): %s", task.exception())
