"""Kafka source and publishers on aiokafka.

The source reads with auto-commit off, with the partitions assigned by itself and committed
under the group id: all of them (`single` mode, `assignment: manual`, where the subscription's
lease already guarantees one reader, and commits stop once that lease is no longer ours by our
clock: the next holder reads from the last commit), or its share of them, each held under a
Redis lease (`multiple` mode, `assignment: lease`, `fnhub.shares`). No group join, so no
rebalance delay when it starts or takes over from a killed holder. `assignment: group` makes it
a consumer-group member instead. Per partition it commits only the contiguous completed offsets
(offset + 1 of the highest offset below which every message's handler has finished), so a crash
replays from the first unfinished message and never skips one. When the window is full it
pauses its partitions (no fetching at all) and keeps polling so the group does not think it is
dead; on rebalance it commits what is done for the partitions it loses (with leases: it pauses
a partition leaving it, lets its messages in flight settle, commits, then releases the lease).
A new group starts at `earliest` by default (Tansu's `latest` is wrong: it replays the tail of
the last batch), so nothing produced before the first join is skipped.

`direct.py` is the consumer of worker children that read the topics themselves (`path:
direct`): the same group id and assignments (`sharing.py`: the partitions' leases for both),
the same per-partition commit rule, one commit per settled batch.

The sync publisher runs an aiokafka producer on a private event-loop thread: worker processes
get the same client and behaviour as the server, and each publish waits for the broker's ack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fnhub.connectors.base import (
    ConnectorConfigError,
    ConnectorType,
    SourceArgs,
    parse_model,
    trace_in_headers,
)
from fnhub.connectors.kafka.settings import KafkaSettings, KafkaSourceOptions

if TYPE_CHECKING:  # the driver: imported when a source or publisher is made, not by every server
    from fnhub.connectors.kafka.direct import KafkaDirectConsumer
    from fnhub.connectors.kafka.publisher import AsyncKafkaPublisher, KafkaPublisher
    from fnhub.connectors.kafka.source import KafkaSource
    from fnhub.shares import Shares


def create_source(
    settings: KafkaSettings,
    *,
    topics: list[str],
    window: int,
    group: str | None,
    client_id: str,
    options: dict[str, Any],
    shares: Shares | None = None,
) -> KafkaSource:
    from fnhub.connectors.kafka.source import KafkaSource

    opts = parse_model(KafkaSourceOptions, options, "kafka source options")
    group_id = opts.group_id or group
    if not group_id:
        raise ConnectorConfigError("group_id: a consumer group is required (option or caller)")
    return KafkaSource(
        settings,
        topics=topics,
        window=window,
        group_id=group_id,
        client_id=client_id,
        options=opts,
        shares=shares,
    )


def source_args(args: SourceArgs) -> SourceArgs:
    """`single` mode reads every partition itself (`assignment: manual`): the subscription's
    lease already makes it the only reader, and a group join costs seconds (Kafka's initial
    rebalance delay, Tansu's half session) and, after a kill -9, the dead member's whole
    session. `multiple` mode shares the partitions among the servers through Redis, each
    partition under a lease (`assignment: lease`, `fnhub.shares`), for the same reasons;
    `assignment: group` shares them through the consumer group instead."""
    args.options.setdefault("assignment", "manual" if args.mode == "single" else "lease")
    return args


async def test_connection(settings: KafkaSettings, timeout: float) -> None:
    from fnhub.connectors.kafka.publisher import AsyncKafkaPublisher

    s = settings.model_copy(update={"request_timeout_ms": max(int(timeout * 1000), 1000)})
    publisher = await AsyncKafkaPublisher.open(s, timeout)
    await publisher.close()


def _publisher(settings: KafkaSettings) -> KafkaPublisher:
    from fnhub.connectors.kafka.publisher import KafkaPublisher

    return KafkaPublisher(settings)


def _direct(*args: Any, **kwargs: Any) -> KafkaDirectConsumer:
    from fnhub.connectors.kafka.direct import KafkaDirectConsumer

    return KafkaDirectConsumer(*args, **kwargs)


async def _open_async(settings: KafkaSettings) -> AsyncKafkaPublisher:
    from fnhub.connectors.kafka.publisher import AsyncKafkaPublisher

    return await AsyncKafkaPublisher.open(settings, settings.request_timeout_ms / 1000)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported

TYPE = ConnectorType(
    name="kafka",
    settings_model=KafkaSettings,
    source_options=KafkaSourceOptions,
    create_source=create_source,
    test_connection=test_connection,
    create_publisher=_publisher,
    create_async_publisher=_open_async,
    carry_trace=trace_in_headers,
    source_args=source_args,
    create_direct_consumer=_direct,
    takes_shares=True,
)
