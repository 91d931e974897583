"""A role's wait, at its start, for a service to come up (it may start after the role): a
PING for Redis here, all a worker waits for; the database's `SELECT 1` in `bootstrap`. Kept
apart from `bootstrap` so that a worker supervisor imports no SQLAlchemy before its children
run (its recorder opens the database once they do)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from fnhub import heap
from fnhub.backoff import Backoff
from fnhub.config import Settings
from fnhub.redis_client import redacted_url, redis_url, sync_redis

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10.0


def wait_for_redis(settings: Settings, stopped: Callable[[], bool] = lambda: False) -> bool:
    """Return once Redis answers a PING (True), or `stopped()` holds first (False)."""

    def ping() -> None:
        client = sync_redis(settings, socket_connect_timeout=5, socket_timeout=5)
        try:
            client.ping()
        finally:
            client.close()

    return wait_until_up("Redis", redacted_url(redis_url(settings)), ping, stopped)


def wait_until_up(
    what: str,
    where: str,
    check: Callable[[], None],
    stopped: Callable[[], bool],
    errors: tuple[type[BaseException], ...] = (),
) -> bool:
    """Call `check` until it stops failing (with a Redis error, an OSError or one of `errors`);
    meanwhile say why, and retry with exponential backoff and jitter (machines that restart
    together do not knock in step)."""
    caught: tuple[type[BaseException], ...] = (redis.RedisError, OSError, *errors)
    backoff = Backoff(initial=FIRST_RETRY_SECONDS, cap=MAX_RETRY_SECONDS)
    waited = False
    while not stopped():
        try:
            check()
        except caught as exc:
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
