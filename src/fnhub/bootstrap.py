"""Opening what every role needs: settings → database, Redis and the script store."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.redis_client import sync_redis
from fnhub.scripts.store import ScriptStore
from fnhub.store.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    redis: redis.Redis
    keys: Keys
    scripts: ScriptStore

    def close(self) -> None:
        self.redis.close()
        self.db.dispose()


def open_services(settings: Settings, *, migrate: bool = True) -> Services:
    db = Database(settings.resolved_db_url())
    if migrate:
        db.migrate()
    client = sync_redis(settings)
    keys = Keys(settings.key_prefix)
    return Services(settings, db, client, keys, ScriptStore(db, client, keys))
