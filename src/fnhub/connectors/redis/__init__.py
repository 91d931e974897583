"""Redis sources (pub/sub and streams) and publishers on redis-py.

`kind: stream` is the reliable one: a consumer group reads at most the free window slots
(XREADGROUP COUNT), acks each entry after its handler (XACK, batched), re-reads its own pending
entries first after a restart, claims a dead consumer's entries seconds after its liveness key
lapsed (`liveness.py`) and any entry left idle for `claim_idle_ms` (XAUTOCLAIM). Its
in-flight entries are touched (XCLAIM JUSTID) so live slow handlers are not stolen.
`direct.py` is the same group read by worker children themselves (`path: direct`).

`kind: pubsub` cannot push back: messages that arrive while the window is full wait in a bounded
buffer; when that overflows the newest message is dropped, counted in `status.dropped` and
logged (rate-limited). Messages published while the connection is down are never seen.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Mapping
from typing import Any

from redis.exceptions import RedisError

from fnhub.connectors.base import (
    ConnectorConfigError,
    ConnectorError,
    ConnectorType,
    DirectPlace,
    SourceArgs,
    describe_error,
    parse_model,
    trace_in_headers,
)
from fnhub.connectors.redis.client import async_client, where
from fnhub.connectors.redis.direct import RedisDirectConsumer
from fnhub.connectors.redis.publisher import AsyncRedisPublisher, RedisPublisher
from fnhub.connectors.redis.settings import RedisSettings, RedisSourceOptions
from fnhub.connectors.redis.source import (
    GLOB_CHARS,
    RedisPubSubSource,
    RedisStreamSource,
)


def create_source(
    settings: RedisSettings,
    *,
    topics: list[str],
    window: int,
    group: str | None,
    client_id: str,
    options: dict[str, Any],
) -> RedisPubSubSource | RedisStreamSource:
    opts = parse_model(RedisSourceOptions, options, "redis source options")
    kw: dict[str, Any] = {
        "topics": topics,
        "window": window,
        "client_id": client_id,
        "options": opts,
    }
    if opts.kind == "stream":
        if not client_id:
            raise ConnectorConfigError("client_id: streams need a stable consumer name")
        return RedisStreamSource(settings, group=group or "fnhub", **kw)
    return RedisPubSubSource(settings, **kw)


async def test_connection(settings: RedisSettings, timeout: float) -> None:
    s = settings.model_copy(update={"socket_timeout": timeout})
    client = async_client(s)
    try:
        await asyncio.wait_for(client.ping(), timeout)
    except TimeoutError:
        raise ConnectorError(f"redis {where(s)}: no answer within {timeout}s") from None
    except (RedisError, OSError) as exc:
        raise ConnectorError(f"redis {where(s)}: {describe_error(exc)}") from exc
    finally:
        await client.aclose()


async def _open_async(settings: RedisSettings) -> AsyncRedisPublisher:
    return AsyncRedisPublisher(settings)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Channels with `*`, `?` or `[` are glob patterns (PSUBSCRIBE); the rest are names."""
    if GLOB_CHARS.intersection(topic_filter):
        return fnmatch.fnmatchcase(topic, topic_filter)
    return topic_filter == topic


def source_args(args: SourceArgs) -> SourceArgs:
    """In `single` mode the stream consumer may be named (`options.consumer`)."""
    if args.mode == "single":
        args.client_id = args.options.pop("consumer", args.client_id)
    return args


def publish_options(target: Mapping[str, Any]) -> dict[str, Any]:
    kind = {"kind": target["kind"]} if target.get("kind") else {}
    return {**kind, **(target.get("options") or {})}


def carry_trace(
    options: dict[str, Any], traceparent: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Streams: the trace context as a field beside the payload (the source reads other
    fields as headers); a pub/sub message is the payload alone."""
    if options.get("kind") != "stream":
        return options
    return trace_in_headers(options, traceparent, settings)


def create_direct_consumer(
    settings: RedisSettings, *, place: DirectPlace, **kw: Any
) -> RedisDirectConsumer:
    """A stream group hands each entry to one consumer itself: a child's place is not needed."""
    return RedisDirectConsumer(settings, **kw)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported

TYPE = ConnectorType(
    name="redis",
    settings_model=RedisSettings,
    source_options=RedisSourceOptions,
    create_source=create_source,
    test_connection=test_connection,
    create_publisher=RedisPublisher,
    create_async_publisher=_open_async,
    topic_matches=topic_matches,
    source_args=source_args,
    publish_options=publish_options,
    carry_trace=carry_trace,
    create_direct_consumer=create_direct_consumer,
)
