"""Servers announce themselves, and acknowledge each project revision once they reloaded it.

Every HTTP server process writes `{host, pid, version, url, started, beat, project_rev, ...}`
under its id in `keys.servers` once a second (`fnhub.presence`), with what its features hold
(`ServerContext.facts`: the subscriptions it is subscribed to, its WebSub delivery claims).
It polls `keys.project_revision` (bumped by `fnhub apply` and `serve --reload`) five times a
second; when it moves, the server reloads its active scripts and endpoints at once and then writes
the revision it loaded. So `fnhub apply` can say which running servers picked a change up, and how
fast, instead of hoping (`wait_for_pickup`). Subscriptions and cron beats follow their own
revisions within a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis

from fnhub.keys import Keys
from fnhub.presence import Announcer, entries
from fnhub.redis_replies import as_hash
from fnhub.server.context import ServerContext

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
BEAT_SECONDS = 1.0
#: a server whose last beat is older than this is not running (for `fnhub apply`'s pickup)
STALE_SECONDS = 5.0


class Presence:
    """The announcing loop of one server process (`app.py` runs it for the server's life)."""

    def __init__(
        self, ctx: ServerContext, reload: Callable[[], Awaitable[None]], url: str | None
    ) -> None:
        self.ctx = ctx
        self.reload = reload
        self.url = url
        ttl = ctx.settings.presence_ttl_seconds
        self.announcer = Announcer(ctx.redis, ctx.keys.servers, ctx.server_id, BEAT_SECONDS, ttl)
        self.loaded: int | None = None

    async def run(self) -> None:
        last_beat = 0.0
        while True:
            try:
                revision = int(await self.ctx.redis.get(self.ctx.keys.project_revision) or 0)
                if revision != self.loaded:
                    await self.reload()
                    self.loaded = revision
                    last_beat = 0.0
                now = time.monotonic()
                if now - last_beat >= BEAT_SECONDS:
                    await self._beat()
                    last_beat = now
            except (redis.RedisError, OSError) as exc:
                log.warning("cannot announce this server in Redis: %s", exc)
            await asyncio.sleep(POLL_SECONDS)

    async def _beat(self) -> None:
        facts: dict[str, Any] = {
            "url": self.url,
            "http_processes": self.ctx.settings.http_processes,
            "project_rev": self.loaded,
        }
        for name, fact in self.ctx.facts.items():
            try:
                facts[name] = fact()
            except Exception:  # a feature's bad fact must not stop the server announcing
                log.exception("presence fact %s failed", name)
        await self.announcer.beat(facts)

    async def leave(self) -> None:
        """At shutdown: this server no longer runs."""
        await self.announcer.leave()


def live_servers(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """The servers that beat within the last few seconds, oldest first."""
    now = time.time()
    found = [e for _sid, e in entries(as_hash(client.hgetall(keys.servers)))]
    return sorted((e for e in found if now - e["beat"] < STALE_SECONDS), key=lambda e: e["started"])


@dataclass
class Pickup:
    """Which live servers loaded a revision (`seconds`: when the last of them had)."""

    revision: int
    picked: list[dict[str, Any]]
    missing: list[dict[str, Any]]
    seconds: float


def wait_for_pickup(
    client: redis.Redis, keys: Keys, revision: int, timeout: float, poll: float = 0.05
) -> Pickup:
    """Wait until every live server acknowledged `revision` (or a later one), or `timeout`."""
    started = time.monotonic()
    while True:
        servers = live_servers(client, keys)
        picked = [s for s in servers if (s.get("project_rev") or 0) >= revision]
        missing = [s for s in servers if s not in picked]
        elapsed = time.monotonic() - started
        if not missing or elapsed >= timeout:
            return Pickup(revision, picked, missing, elapsed)
        time.sleep(poll)


def describe(server: dict[str, Any]) -> str:
    """How a server is named to people: its address, host and process."""
    where = f"{server.get('host')} pid {server.get('pid')}"
    return f"{server['url']} ({where})" if server.get("url") else where
