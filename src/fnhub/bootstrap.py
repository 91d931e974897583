"""Opening what every role needs: settings → database, Redis and the script store; and waiting,
at a role's start, for Redis and the database to come up (they may start after it)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from fnhub import heap
from fnhub.backoff import Backoff
from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.redis_client import redacted_url, redis_url, sync_redis
from fnhub.scripts.store import ScriptStore
from fnhub.store.db import Database

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10.0


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
    return Services(settings, db, client, keys, ScriptStore(db, client, keys, settings))


def wait_for_redis(settings: Settings, stopped: Callable[[], bool] = lambda: False) -> bool:
    """Return once Redis answers a PING (True), or `stopped()` holds first (False)."""

    def ping() -> None:
        client = sync_redis(settings, socket_connect_timeout=5, socket_timeout=5)
        try:
            client.ping()
        finally:
            client.close()

    return _wait_until_up("Redis", redacted_url(redis_url(settings)), ping, stopped)


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
    return _wait_until_up("the database", shown, select_one, stopped)


def wait_for_services(settings: Settings, stopped: Callable[[], bool] = lambda: False) -> bool:
    """Redis, then the database (every role but the worker needs both to start)."""
    return wait_for_redis(settings, stopped) and wait_for_database(settings, stopped)


def _wait_until_up(
    what: str, where: str, check: Callable[[], None], stopped: Callable[[], bool]
) -> bool:
    """Call `check` until it stops failing; meanwhile say why, and retry with exponential
    backoff and jitter (machines that restart together do not knock in step)."""
    backoff = Backoff(initial=FIRST_RETRY_SECONDS, cap=MAX_RETRY_SECONDS)
    waited = False
    while not stopped():
        try:
            check()
        except (redis.RedisError, SQLAlchemyError, OSError) as exc:
            heap.resume()  # a start-up that waits may wait long: not without the collector
            pause = backoff.next()
            log.warning(
                "waiting for %s at %s: %s; retrying in %.1fs", what, where, _reason(exc), pause
            )
            waited = True
            until = time.monotonic() + pause
            while not stopped() and (left := until - time.monotonic()) > 0:
                time.sleep(min(left, 0.1))
            continue
        if waited:
            log.info("%s at %s is up", what, where)
        return True
    return False


def _reason(exc: BaseException) -> str:
    """The driver's own words, first line only (SQLAlchemy appends the SQL and a help link)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(cause).__name__
