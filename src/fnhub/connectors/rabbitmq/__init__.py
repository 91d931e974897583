"""RabbitMQ (AMQP 0-9-1) on aio-pika.

aio-pika rather than aiormq (which it is built on): its robust connection reconnects by itself
and restores channels, queues, bindings and consumers, which is exactly what a subscription
must do after a broker restart, and its publisher confirms are one awaited call.

A subscription is a durable queue (named after its group) bound to the connector's exchange
(a durable topic exchange, `fnhub` by default) with its topics as binding keys, consumed with
manual acks after the function finished and prefetch = window: at least once. Topics match as
AMQP topic exchanges do: `*` one word, `#` zero or more. Rules and scripts publish to the same
exchange with the topic as routing key, waiting for the publisher confirm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fnhub.connectors.base import ConnectorType, parse_model, trace_in_headers
from fnhub.connectors.rabbitmq.settings import RabbitmqSettings, RabbitmqSourceOptions

if TYPE_CHECKING:  # the driver: imported when a source or publisher is made, not by every server
    from fnhub.connectors.rabbitmq.publisher import AsyncRabbitmqPublisher, RabbitmqPublisher
    from fnhub.connectors.rabbitmq.source import RabbitmqSource


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """AMQP topic exchange matching: `*` is exactly one word, `#` zero or more words."""

    def match(b: list[str], r: list[str]) -> bool:
        if not b:
            return not r
        if b[0] == "#":
            return any(match(b[1:], r[i:]) for i in range(len(r) + 1))
        if not r:
            return False
        return (b[0] == "*" or b[0] == r[0]) and match(b[1:], r[1:])

    return match(binding_key.split("."), routing_key.split("."))


def create_source(
    settings: RabbitmqSettings,
    *,
    topics: list[str],
    window: int,
    group: str | None,
    client_id: str,
    options: dict[str, Any],
) -> RabbitmqSource:
    from fnhub.connectors.rabbitmq.source import RabbitmqSource

    opts = parse_model(RabbitmqSourceOptions, options, "rabbitmq source options")
    return RabbitmqSource(
        settings,
        topics=topics,
        window=window,
        queue=opts.queue or group or "fnhub",
        client_id=client_id,
        options=opts,
    )


async def test_connection(settings: RabbitmqSettings, timeout: float) -> None:
    from fnhub.connectors.rabbitmq.publisher import AsyncRabbitmqPublisher

    s = settings.model_copy(update={"connect_timeout": timeout})
    publisher = await AsyncRabbitmqPublisher.open(s)
    await publisher.close()


def _publisher(settings: RabbitmqSettings) -> RabbitmqPublisher:
    from fnhub.connectors.rabbitmq.publisher import RabbitmqPublisher

    return RabbitmqPublisher(settings)


async def _open_async(settings: RabbitmqSettings) -> AsyncRabbitmqPublisher:
    from fnhub.connectors.rabbitmq.publisher import AsyncRabbitmqPublisher

    return await AsyncRabbitmqPublisher.open(settings)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported

TYPE = ConnectorType(
    name="rabbitmq",
    settings_model=RabbitmqSettings,
    source_options=RabbitmqSourceOptions,
    create_source=create_source,
    test_connection=test_connection,
    create_publisher=_publisher,
    create_async_publisher=_open_async,
    carry_trace=trace_in_headers,
    topic_matches=topic_matches,
)
