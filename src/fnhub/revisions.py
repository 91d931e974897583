"""Revision counters: how a change reaches every running process.

Each area that running processes cache (scripts, the project, endpoints, cron jobs, dynamic cron
jobs, subscriptions, env variables) has a counter in Redis (`Keys.*_revision`). Whoever changes
the area bumps its counter after the change is stored; servers, workers and beats poll the
counters and reload what moved. Every bump goes through `bump`, so that is the one place to
look for who tells whom.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fnhub.config import Settings
from fnhub.keys import Keys


def bump(client: Any, key: str) -> Any:
    """Move the counter `key` on: `client` is a sync or asyncio Redis client (returns the new
    revision, awaitable for asyncio) or a pipeline (queued with the change it announces)."""
    return client.incr(key)


def bump_once(settings: Settings, key_of: Callable[[Keys], str]) -> int:
    """Bump `key_of(Keys)` on a connection of its own, for callers that hold none (the CLI's
    `fnhub apply` sections)."""
    from fnhub.redis_client import sync_redis

    client = sync_redis(settings)
    try:
        return int(bump(client, key_of(Keys(settings.key_prefix))))
    finally:
        client.close()
