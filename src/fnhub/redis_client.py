"""Redis clients built from settings: the configured URL, or the embedded server's socket."""

from __future__ import annotations

import redis
import redis.asyncio as aredis

from fnhub.config import Settings
from fnhub.embedded_redis import embedded_url


def redis_url(settings: Settings) -> str:
    return settings.redis_url or embedded_url(settings.data_dir)


def sync_redis(settings: Settings, **kwargs: object) -> redis.Redis:
    return redis.Redis.from_url(redis_url(settings), **kwargs)  # type: ignore[arg-type]


def async_redis(settings: Settings, **kwargs: object) -> aredis.Redis:
    return aredis.Redis.from_url(redis_url(settings), **kwargs)  # type: ignore[arg-type]
