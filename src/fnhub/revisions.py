"""Revision counters: how a change reaches every running process.

Each area that running processes cache (scripts, the project, endpoints, cron jobs, dynamic cron
jobs, subscriptions, env variables) has a counter in Redis (`Keys.*_revision`). Whoever changes
the area bumps its counter after the change is stored; servers, workers and beats poll the
counters and reload what moved. Every bump goes through `bump`, so that is the one place to
look for who tells whom.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fnhub.config import Settings
from fnhub.keys import Keys


def bump(client: Any, key: str) -> Any:
    """Move the counter `key` on: `client` is a sync or asyncio Redis client (returns the new
    revision, awaitable for asyncio) or a pipeline (queued with the change it announces)."""
    return client.incr(key)


def bump_past(client: Any, key: str) -> Any:
    """Move the counter `key` past any value a process may hold from before Redis lost it (a
    restart without persistence, a flush): by the time in ms, which counters moving by one per
    change never reach. `bump`'s `client` kinds; for a counter whose history may be gone, where
    a plain `bump` could land on the value a cache holds for other contents."""
    return client.incrby(key, int(time.time() * 1000))


def bump_once(settings: Settings, key_of: Callable[[Keys], str]) -> int:
    """Bump `key_of(Keys)` on a connection of its own, for callers that hold none (the CLI's
    `fnhub apply` sections)."""
    from fnhub.redis_client import sync_redis

    client = sync_redis(settings)
    try:
        return int(bump(client, key_of(Keys(settings.key_prefix))))
    finally:
        client.close()
