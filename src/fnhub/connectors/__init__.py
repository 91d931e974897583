"""Broker clients behind one small interface: sources that read with a bounded window and ack
after the handler, and publishers. Connectors know nothing of workers, tasks or HTTP.

    source = create_source("mqtt", {"host": "broker"}, topics=["sensors/+/temp"], window=100,
                           group=None, client_id=stable_client_id("plant", "temps"), options={})
    await source.run(each(handler))    # until source.stop(); or a batch handler
    get_publisher("plant", "mqtt", {"host": "broker"}).publish("alerts", {"t": 91}, qos=1)
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from fnhub.connectors.base import (
    AsyncPublisher,
    BatchHandler,
    ConnectorConfigError,
    ConnectorError,
    ConnectorType,
    DirectConsumer,
    DirectPlace,
    Handler,
    Message,
    Publisher,
    Settle,
    Source,
    SourceArgs,
    SourceStatus,
    each,
    parse_model,
    stable_client_id,
)
from fnhub.connectors.pool import (
    close_async_publishers,
    close_publishers,
    get_async_publisher,
    get_publisher,
)
from fnhub.connectors.types import CONNECTOR_TYPES, connector_types, get_type

__all__ = [
    "CONNECTOR_TYPES",
    "AsyncPublisher",
    "BatchHandler",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorType",
    "DirectConsumer",
    "DirectPlace",
    "Handler",
    "Message",
    "Publisher",
    "Settle",
    "Source",
    "SourceArgs",
    "SourceStatus",
    "close_async_publishers",
    "close_publishers",
    "connector_types",
    "create_direct_consumer",
    "create_source",
    "each",
    "get_async_publisher",
    "get_publisher",
    "get_type",
    "stable_client_id",
    "test_connection",
    "validate_settings",
]


def validate_settings(connector_type: str, settings: dict[str, Any]) -> BaseModel:
    """Parse connection settings; raises ConnectorConfigError naming each bad field."""
    ct = get_type(connector_type)
    return parse_model(ct.settings_model, settings, f"{connector_type} settings")


def create_source(
    connector_type: str,
    settings: dict[str, Any],
    *,
    topics: list[str],
    window: int,
    group: str | None,
    client_id: str,
    options: dict[str, Any],
    shares: Any = None,
) -> Source:
    """A source for `topics`; nothing connects until `run()`. `shares` (a `fnhub.shares.Shares`,
    `multiple` mode) goes to the types that take it (`ConnectorType.takes_shares`)."""
    if window < 1:
        raise ConnectorConfigError("window: must be at least 1")
    ct = get_type(connector_type)
    model = parse_model(ct.settings_model, settings, f"{connector_type} settings")
    return ct.create_source(
        model,
        topics=list(topics),
        window=window,
        group=group,
        client_id=client_id,
        options=dict(options or {}),
        **({"shares": shares} if shares is not None and ct.takes_shares else {}),
    )


def create_direct_consumer(
    connector_type: str,
    settings: dict[str, Any],
    *,
    topics: list[str],
    group: str,
    consumer: str,
    options: dict[str, Any],
    place: DirectPlace | None = None,
    shares: Any = None,
) -> DirectConsumer:
    """A worker child's consumer of `topics` (a subscription's direct path); nothing connects
    until `open()`. ConnectorConfigError when the broker (or these options) has no direct path.
    `shares` (`multiple` mode: a function making the child's `fnhub.shares.Shares`, called on
    the thread that uses it) goes to the types that take it (`ConnectorType.takes_shares`)."""
    ct = get_type(connector_type)
    if ct.create_direct_consumer is None:
        raise ConnectorConfigError(
            f"path: direct is not available for {connector_type} subscriptions yet "
            "(Redis Streams, Kafka and MQTT only); use path: queued"
        )
    model = parse_model(ct.settings_model, settings, f"{connector_type} settings")
    opts = parse_model(ct.source_options, options, f"{connector_type} source options")
    return ct.create_direct_consumer(
        model,
        topics=list(topics),
        group=group,
        consumer=consumer,
        options=opts,
        place=place or DirectPlace(),
        **({"shares": shares} if shares is not None and ct.takes_shares else {}),
    )


async def test_connection(
    connector_type: str, settings: dict[str, Any], timeout: float = 5
) -> None:
    """Connect once and disconnect; raises ConnectorError with a clear message on failure."""
    ct = get_type(connector_type)
    model = parse_model(ct.settings_model, settings, f"{connector_type} settings")
    try:
        await asyncio.wait_for(ct.test_connection(model, timeout), timeout + 2)
    except TimeoutError:
        raise ConnectorError(f"{connector_type}: no answer within {timeout}s") from None


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported
