"""Redis publishers, sync (scripts, on a private thread or loop) and async (rules' outputs)."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from fnhub.connectors.base import (
    ConnectorError,
    describe_error,
    encode_payload,
    parse_model,
)
from fnhub.connectors.redis.client import async_client, sync_client, where
from fnhub.connectors.redis.settings import (
    RedisPublishOptions,
    RedisSettings,
)

log = logging.getLogger("fnhub.connectors.redis")

GLOB_CHARS = set("*?[")


# --- publishers -----------------------------------------------------------------------------


def _fields(opts: RedisPublishOptions, payload: bytes) -> dict[Any, Any]:
    """A stream entry: the payload in its field, and the headers beside it."""
    fields: dict[Any, Any] = dict(opts.headers or {})
    fields[opts.field] = payload
    return fields


class RedisPublisher:
    """PUBLISH (kind 'pubsub', default) or XADD with the payload in field `data` ('stream')."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self._client = sync_client(settings)

    def publish(self, topic: str, message: Any, **options: Any) -> None:
        opts = parse_model(RedisPublishOptions, options, "redis publish options")
        payload = encode_payload(message)
        try:
            if opts.kind == "stream":
                self._client.xadd(
                    topic, _fields(opts, payload), maxlen=opts.maxlen, approximate=True
                )
            else:
                self._client.publish(topic, payload)
        except (RedisError, OSError) as exc:
            raise ConnectorError(
                f"redis {where(self.settings)}: publish to {topic!r} failed: {describe_error(exc)}"
            ) from exc

    def close(self) -> None:
        self._client.close()


class AsyncRedisPublisher:
    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self._client = async_client(settings, retries=2)

    async def publish(self, topic: str, message: Any, **options: Any) -> None:
        opts = parse_model(RedisPublishOptions, options, "redis publish options")
        payload = encode_payload(message)
        try:
            if opts.kind == "stream":
                await self._client.xadd(
                    topic, _fields(opts, payload), maxlen=opts.maxlen, approximate=True
                )
            else:
                await self._client.publish(topic, payload)
        except (RedisError, OSError) as exc:
            raise ConnectorError(
                f"redis {where(self.settings)}: publish to {topic!r} failed: {describe_error(exc)}"
            ) from exc

    async def close(self) -> None:
        await self._client.aclose()
