"""Opening what every role needs: settings → database, Redis and the script store; and waiting,
at a role's start, for the database to come up (it may start after it; Redis: `waiting`).

The script store (and through it the audit log, the secrets' cipher and the script checks) is
imported by `open_services` only: a beat waits here without them (`tests/test_beat_start.py`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.redis_client import sync_redis
from fnhub.store.db import Database
from fnhub.waiting import wait_for_redis, wait_until_up

if TYPE_CHECKING:
    from fnhub.scripts.store import ScriptStore


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
    from fnhub.scripts.store import ScriptStore

    db = Database(settings.resolved_db_url())
    if migrate:
        db.migrate()
    client = sync_redis(settings)
    keys = Keys(settings.key_prefix)
    return Services(settings, db, client, keys, ScriptStore(db, client, keys, settings))


def wait_for_database(settings: Settings, stopped: Callable[[], bool] = lambda: False) -> bool:
    """Return once the database answers `SELECT 1` (True), or `stopped()` holds first (False)."""
    url = settings.resolved_db_url()

    def select_one() -> None:
        db = Database(url)
        try:
            with db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        finally:
            db.dispose()

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = url.split("@")[-1]
    return wait_until_up("the database", shown, select_one, stopped, (SQLAlchemyError,))


def wait_for_services(settings: Settings, stopped: Callable[[], bool] = lambda: False) -> bool:
    """Redis, then the database (every role but the worker needs both to start)."""
    return wait_for_redis(settings, stopped) and wait_for_database(settings, stopped)
