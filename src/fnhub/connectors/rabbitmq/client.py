"""Connecting to RabbitMQ with aio-pika's robust connection (it reconnects by itself and
restores channels, queues, bindings and consumers)."""

from __future__ import annotations

from urllib.parse import quote

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from fnhub.connectors.rabbitmq.settings import RabbitmqSettings
from fnhub.connectors.settings import tls_options


def where(s: RabbitmqSettings) -> str:
    if s.url:
        parts = s.url.split("@")[-1]  # never show credentials
        return parts.split("://")[-1]
    return f"{s.host}:{s.port}"


def url_of(s: RabbitmqSettings) -> str:
    if s.url:
        return s.url
    scheme = "amqps" if tls_options(s.tls) else "amqp"
    user = quote(s.username, safe="")
    password = quote(s.password or "", safe="")
    return f"{scheme}://{user}:{password}@{s.host}:{s.port}/{quote(s.virtualhost, safe='')}"


async def connect(s: RabbitmqSettings, name: str) -> AbstractRobustConnection:
    tls = tls_options(s.tls)
    return await aio_pika.connect_robust(
        url_of(s),
        timeout=s.connect_timeout,
        ssl_context=tls.context() if tls else None,
        client_properties={"connection_name": name},
        reconnect_interval=1,
        heartbeat=s.heartbeat,
    )


async def declare_exchange(
    channel: AbstractChannel, s: RabbitmqSettings, name: str | None = None
) -> AbstractExchange:
    """The connector's exchange (durable), or the default exchange for the name ""."""
    name = s.exchange if name is None else name
    if not name:
        return channel.default_exchange
    return await channel.declare_exchange(name, s.exchange_type, durable=True)
