"""RabbitMQ publishers with publisher confirms: a publish returns once the broker took
responsibility for the message, so a rule's input is acked only after its output is safe."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aio_pika.exceptions import AMQPError

from fnhub.connectors.base import ConnectorError, describe_error, encode_payload, parse_model
from fnhub.connectors.rabbitmq.client import connect, declare_exchange, where
from fnhub.connectors.rabbitmq.settings import RabbitmqPublishOptions, RabbitmqSettings
from fnhub.connectors.threaded import ThreadedPublisher


class AsyncRabbitmqPublisher:
    def __init__(self, settings: RabbitmqSettings, connection: AbstractRobustConnection) -> None:
        self.settings = settings
        self._connection = connection
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, settings: RabbitmqSettings) -> AsyncRabbitmqPublisher:
        try:
            connection = await connect(settings, "fnhub-publisher")
        except (AMQPError, OSError, TimeoutError) as exc:
            raise ConnectorError(
                f"rabbitmq {where(settings)}: cannot connect: {describe_error(exc)}"
            ) from exc
        return cls(settings, connection)

    async def _exchange(self, name: str) -> AbstractExchange:
        found = self._exchanges.get(name)
        if found is not None and self._channel is not None and not self._channel.is_closed:
            return found
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
                self._exchanges.clear()
            if name not in self._exchanges:
                self._exchanges[name] = await declare_exchange(self._channel, self.settings, name)
            return self._exchanges[name]

    async def publish(self, topic: str, message: Any, **options: Any) -> None:
        o = parse_model(RabbitmqPublishOptions, options, "rabbitmq publish options")
        exchange_name = self.settings.exchange if o.exchange is None else o.exchange
        body = aio_pika.Message(
            encode_payload(message),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT if o.persistent else None,
            headers=dict(o.headers) if o.headers else None,
            message_id=o.message_id,
        )
        try:
            exchange = await self._exchange(exchange_name)
            await exchange.publish(
                body, routing_key=topic, mandatory=o.mandatory, timeout=o.timeout
            )
        except (AMQPError, OSError, TimeoutError) as exc:
            raise ConnectorError(
                f"rabbitmq {where(self.settings)}: publish to {exchange_name or '(default)'}"
                f"/{topic!r} failed: {describe_error(exc)}"
            ) from exc

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._connection.close(), 5)


class RabbitmqPublisher(ThreadedPublisher):
    def __init__(self, settings: RabbitmqSettings) -> None:
        super().__init__(
            "rabbitmq",
            lambda: AsyncRabbitmqPublisher.open(settings),
            open_timeout=settings.connect_timeout,
            publish_timeout=RabbitmqPublishOptions.model_validate({}).timeout,
        )
