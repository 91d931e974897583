"""An in-memory broker in the server's process, for tests of subscriptions and rules.

A real implementation, not a mock: durable groups, at-least-once delivery with ack after the
handler, redelivery of what was not acked. It lives and dies with the process, so it is no use
between a worker and a server (publish from a script reaches only the worker's own broker).
"""

from __future__ import annotations

from typing import Any

from fnhub.connectors.base import ConnectorType, parse_model
from fnhub.connectors.memory.broker import MemoryBroker, broker
from fnhub.connectors.memory.publisher import AsyncMemoryPublisher, MemoryPublisher
from fnhub.connectors.memory.settings import MemorySettings, MemorySourceOptions
from fnhub.connectors.memory.source import MemorySource

__all__ = ["TYPE", "MemoryBroker", "broker"]


def create_source(
    settings: MemorySettings,
    *,
    topics: list[str],
    window: int,
    group: str | None,
    client_id: str,
    options: dict[str, Any],
) -> MemorySource:
    opts = parse_model(MemorySourceOptions, options, "memory source options")
    return MemorySource(
        settings,
        topics=topics,
        window=window,
        group=group or "fnhub",
        client_id=client_id,
        options=opts,
    )


async def test_connection(settings: MemorySettings, timeout: float) -> None:
    broker(settings.broker)


async def _open_async(settings: MemorySettings) -> AsyncMemoryPublisher:
    return AsyncMemoryPublisher(settings)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported

TYPE = ConnectorType(
    name="memory",
    settings_model=MemorySettings,
    source_options=MemorySourceOptions,
    create_source=create_source,
    test_connection=test_connection,
    create_publisher=MemoryPublisher,
    create_async_publisher=_open_async,
    in_console=False,
)
