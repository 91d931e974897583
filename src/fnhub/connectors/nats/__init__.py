"""NATS JetStream on nats-py, the NATS maintainers' asyncio client.

A subscription reads a durable pull consumer of the stream that stores its subjects, with
explicit acks sent only after the function finished: at least once, across server crashes
and broker restarts (the consumer and its unacked messages live in the stream). `single` mode
is one server pulling (the runner's lease); `multiple` mode is every server pulling from the
same durable consumer, which hands each message to one of them, like a queue group. Subjects
match as NATS does: `*` one token, `>` the rest. Publishing (scripts, rules' outputs) is a
JetStream publish that returns once the stream stored the message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fnhub.connectors.base import ConnectorType, parse_model, trace_in_headers
from fnhub.connectors.nats.settings import NatsSettings, NatsSourceOptions

if TYPE_CHECKING:  # the driver: imported when a source or publisher is made, not by every server
    from fnhub.connectors.nats.publisher import AsyncNatsPublisher, NatsPublisher
    from fnhub.connectors.nats.source import NatsSource


def topic_matches(topic_filter: str, topic: str) -> bool:
    """NATS subjects: `*` matches one token, a final `>` one or more."""
    f_parts, t_parts = topic_filter.split("."), topic.split(".")
    for i, part in enumerate(f_parts):
        if part == ">" and i == len(f_parts) - 1:
            return len(t_parts) > i
        if i >= len(t_parts) or (part != "*" and part != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)


def create_source(
    settings: NatsSettings,
    *,
    topics: list[str],
    window: int,
    group: str | None,
    client_id: str,
    options: dict[str, Any],
) -> NatsSource:
    from fnhub.connectors.nats.source import NatsSource

    opts = parse_model(NatsSourceOptions, options, "nats source options")
    durable = opts.durable or group or "fnhub"
    durable = "".join(c if c.isalnum() or c in "-_" else "_" for c in durable)
    return NatsSource(
        settings,
        topics=topics,
        window=window,
        durable=durable,
        client_id=client_id,
        options=opts,
    )


async def test_connection(settings: NatsSettings, timeout: float) -> None:
    from fnhub.connectors.nats.publisher import AsyncNatsPublisher

    s = settings.model_copy(update={"connect_timeout": timeout})
    publisher = await AsyncNatsPublisher.open(s)
    try:
        await publisher.check()
    finally:
        await publisher.close()


def _publisher(settings: NatsSettings) -> NatsPublisher:
    from fnhub.connectors.nats.publisher import NatsPublisher

    return NatsPublisher(settings)


async def _open_async(settings: NatsSettings) -> AsyncNatsPublisher:
    from fnhub.connectors.nats.publisher import AsyncNatsPublisher

    return await AsyncNatsPublisher.open(settings)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported

TYPE = ConnectorType(
    name="nats",
    settings_model=NatsSettings,
    source_options=NatsSourceOptions,
    create_source=create_source,
    test_connection=test_connection,
    create_publisher=_publisher,
    create_async_publisher=_open_async,
    carry_trace=trace_in_headers,
    topic_matches=topic_matches,
)
