"""The RabbitMQ source: a durable queue bound to the connector's exchange with the
subscription's topics as binding keys, consumed with manual acks and `prefetch` = window.

The broker never has more than a window of unacknowledged messages out to one consumer, so
the window cannot overflow; each is acked (basic.ack) once its handler finished. Messages
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

from fnhub.connectors.base import (
    Backoff,
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
        self._held: dict[int, AbstractIncomingMessage] = {}  # id(Message) -> AMQP message
        self._acks: list[AbstractIncomingMessage] = []
        self._sending: set[asyncio.Task[None]] = set()

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
        self._held[id(msg)] = incoming
        self._window.spawn(msg, self._done)

    def _done(self, msg: Message, ok: bool) -> None:
        incoming = self._held.pop(id(msg), None)
        if incoming is None or not ok:  # failed: unacked, back in the queue when we close
            return
        if not self._acks:
            asyncio.get_running_loop().call_soon(self._flush_acks)
        self._acks.append(incoming)

    def _flush_acks(self) -> None:
        acks, self._acks = self._acks, []
        if acks:
            task = asyncio.get_running_loop().create_task(self._send_acks(acks))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_acks(self, acks: list[AbstractIncomingMessage]) -> None:
        sent = 0
        for incoming in acks:
            try:
                await incoming.ack()
                sent += 1
            except (AMQPError, ChannelInvalidStateError, OSError, RuntimeError):
                pass  # its channel is gone: the broker delivers it again
        self.status.acked += sent
        if sent < len(acks):
            log.warning(
                "rabbitmq source %s: %d acks lost with the channel (redelivered)",
                self.client_id,
                len(acks) - sent,
            )

    async def _close(self) -> None:
        self._flush_acks()
        if self._sending:
            await asyncio.wait(self._sending, timeout=5)
        await self._close_connection()

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._held.clear()
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)
