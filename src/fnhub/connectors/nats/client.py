"""Connecting to NATS, and the JetStream stream and durable consumer a source reads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from fnhub.connectors.base import ConnectorConfigError, ConnectorError, describe_error
from fnhub.connectors.nats.settings import NatsSettings, NatsSourceOptions
from fnhub.connectors.settings import tls_options


def where(s: NatsSettings) -> str:
    return ",".join(s.servers)


async def connect(
    s: NatsSettings,
    name: str,
    *,
    reconnect: bool = True,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_error: Callable[[Exception], Awaitable[None]] | None = None,
) -> Client:
    """A connection that reconnects by itself forever (unless `reconnect` is off)."""
    tls = tls_options(s.tls)
    kw: dict[str, Any] = {
        "servers": s.servers,
        "name": s.name or name,
        "connect_timeout": s.connect_timeout,
        "ping_interval": s.ping_interval,
        "max_outstanding_pings": 2,
        "allow_reconnect": reconnect,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
    }
    if s.user is not None:
        kw["user"], kw["password"] = s.user, s.password
    if s.token is not None:
        kw["token"] = s.token
    if tls is not None:
        kw["tls"] = tls.context()
    if on_disconnect is not None:
        kw["disconnected_cb"] = on_disconnect
    if on_reconnect is not None:
        kw["reconnected_cb"] = on_reconnect

    errors: list[Exception] = []

    async def error_cb(exc: Exception) -> None:  # nats-py logs these at error level otherwise
        errors.append(exc)
        del errors[:-1]
        if on_error is not None:
            await on_error(exc)

    kw["error_cb"] = error_cb
    # nats-py keeps retrying an unreachable server instead of failing the first connect
    try:
        return await asyncio.wait_for(nats.connect(**kw), s.connect_timeout + 0.5)
    except TimeoutError:
        why = describe_error(errors[-1]) if errors else "no answer"
        raise ConnectorError(f"nats {where(s)}: cannot connect: {why}") from None


async def stream_of(js: JetStreamContext, topics: list[str], options: NatsSourceOptions) -> str:
    if options.stream:
        return options.stream
    try:
        return await js.find_stream_name_by_subject(topics[0])
    except NotFoundError:
        raise ConnectorConfigError(
            f"no JetStream stream stores {topics[0]!r}: create one (nats stream add) "
            "or name it in options.stream"
        ) from None


async def ensure_consumer(
    js: JetStreamContext, stream: str, durable: str, topics: list[str], o: NatsSourceOptions
) -> None:
    """Create the durable pull consumer, or update it to these subjects and limits."""
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=o.ack_wait,
        max_deliver=o.max_deliver,
        deliver_policy=DeliverPolicy.ALL if o.deliver == "all" else DeliverPolicy.NEW,
        max_ack_pending=-1,  # the sources' windows bound what is in flight
        max_waiting=512,
    )
    if len(topics) == 1:
        config.filter_subject = topics[0]
    else:
        config.filter_subjects = topics
    await js.add_consumer(stream, config)
