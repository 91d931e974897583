"""Process-wide state the SDK reads inside a worker: settings, the Redis client, the database,
the current task.

Workers call `init()` once per child process. Outside a worker (a test, a REPL) the SDK falls back
to settings from the environment, so `fnhub.cache` still works.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING

from fnhub.keys import Keys

if TYPE_CHECKING:  # the SDK (`import fnhub`) stays light: Redis comes with the first use
    import redis

    from fnhub.config import Settings
    from fnhub.store.db import Database
    from fnhub.tasks import Task

current_task: ContextVar[Task | None] = ContextVar("fnhub_current_task", default=None)

_settings: Settings | None = None
_redis: redis.Redis | None = None
_database: Database | None = None
_database_lock = threading.Lock()


def init(settings: Settings, client: redis.Redis | None = None) -> None:
    """Set this process's settings and Redis client; without one, it is built on first use
    (and so is the database handle, forgotten here)."""
    global _settings, _redis, _database
    _settings, _redis, _database = settings, client, None


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


def database() -> Database:
    """The process's database handle (`fnhub.env`, `fnhub.store`), opened on first use."""
    global _database
    with _database_lock:
        if _database is None:
            from fnhub.store.db import Database

            _database = Database(settings().resolved_db_url())
        return _database
