"""Process-wide state the SDK reads inside a worker: settings, the Redis client, the current task.

Workers call `init()` once per child process. Outside a worker (a test, a REPL) the SDK falls back
to settings from the environment, so `fnhub.cache` still works.
"""

from __future__ import annotations

from contextvars import ContextVar

import redis

from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.tasks import Task

current_task: ContextVar[Task | None] = ContextVar("fnhub_current_task", default=None)

_settings: Settings | None = None
_redis: redis.Redis | None = None


def init(settings: Settings, client: redis.Redis | None = None) -> None:
    """Set this process's settings and Redis client; without one, it is built on first use."""
    global _settings, _redis
    _settings, _redis = settings, client


def settings() -> Settings:
    global _settings
    if _settings is None:
        from fnhub.config import load_settings

        _settings = load_settings()
    return _settings


def redis_client() -> redis.Redis:
    global _redis
    if _redis is None:
        from fnhub.redis_client import sync_redis

        _redis = sync_redis(settings())
    return _redis


def keys() -> Keys:
    return Keys(settings().key_prefix)
