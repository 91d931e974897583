"""Redis clients built from settings: the configured URL, or the embedded server's socket.

Every client here returns bytes (no ``decode_responses``) and speaks RESP2: fnhub.redis_replies
types the replies on that promise.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

import redis
import redis.asyncio as aredis
from redis.retry import Retry

from fnhub.config import Settings
from fnhub.embedded_redis import embedded_url


class ClientOptions(TypedDict, total=False):
    """The connection settings callers tune; anything left out keeps redis-py's default."""

    socket_timeout: float
    socket_connect_timeout: float


class SyncClientOptions(ClientOptions, total=False):
    retry: Retry  # the synchronous client's kind (redis.asyncio has its own)


def redis_url(settings: Settings) -> str:
    return settings.redis_url or embedded_url(settings.data_dir)


def sync_redis(settings: Settings, **options: Unpack[SyncClientOptions]) -> redis.Redis:
    return redis.Redis.from_url(redis_url(settings), **options)


def async_redis(settings: Settings, **options: Unpack[ClientOptions]) -> aredis.Redis:
    return aredis.Redis.from_url(redis_url(settings), **options)
