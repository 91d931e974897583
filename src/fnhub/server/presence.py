"""Servers announce themselves, and acknowledge each project revision once they reloaded it.

Every HTTP server process writes `{host, pid, url, started, beat, project_rev}` under its id in
`keys.servers` once a second. It polls `keys.project_revision` (bumped by `fnhub apply` and
`serve --reload`) five times a second; when it moves, the server reloads its active scripts and
endpoints at once and then writes the revision it loaded. So `fnhub apply` can say which running
servers picked a change up, and how fast, instead of hoping (`wait_for_pickup`). Subscriptions
and cron beats follow their own revisions within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis

from fnhub.keys import Keys
from fnhub.redis_replies import as_hash
from fnhub.server.context import ServerContext

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
BEAT_SECONDS = 1.0
#: a server whose last beat is older than this is not running (its entry is left for pruning)
STALE_SECONDS = 5.0
#: entries older than this are removed by the next server that beats (crashed servers)
PRUNE_SECONDS = 300.0


class Presence:
    """The announcing loop of one server process (`app.py` runs it for the server's life)."""

    def __init__(
        self, ctx: ServerContext, reload: Callable[[], Awaitable[None]], url: str | None
    ) -> None:
        self.ctx = ctx
        self.reload = reload
        self.info: dict[str, Any] = {
            "id": ctx.server_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "url": url,
            "started": time.time(),
        }
        self.loaded: int | None = None

    async def run(self) -> None:
        last_beat = 0.0
        pruned = 0.0
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
                if now - pruned >= PRUNE_SECONDS / 10:
                    await self._prune()
                    pruned = now
            except (redis.RedisError, OSError) as exc:
                log.warning("cannot announce this server in Redis: %s", exc)
            await asyncio.sleep(POLL_SECONDS)

    async def _beat(self) -> None:
        entry = {**self.info, "beat": time.time(), "project_rev": self.loaded}
        await self.ctx.redis.hset(self.ctx.keys.servers, self.ctx.server_id, json.dumps(entry))

    async def _prune(self) -> None:
        raw = as_hash(await self.ctx.redis.hgetall(self.ctx.keys.servers))
        old = [sid for sid, entry in _entries(raw) if time.time() - entry["beat"] > PRUNE_SECONDS]
        if old:
            await self.ctx.redis.hdel(self.ctx.keys.servers, *old)

    async def leave(self) -> None:
        """At shutdown: this server no longer runs."""
        with contextlib.suppress(redis.RedisError, OSError):
            await self.ctx.redis.hdel(self.ctx.keys.servers, self.ctx.server_id)


def _entries(raw: dict[bytes, bytes]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for sid, value in raw.items():
        try:
            entry = json.loads(value)
            float(entry["beat"])
        except (ValueError, KeyError, TypeError):
            continue
        out.append((sid.decode(), entry))
    return out


def live_servers(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """The servers that beat within the last few seconds, oldest first."""
    now = time.time()
    entries = [e for _sid, e in _entries(as_hash(client.hgetall(keys.servers)))]
    return sorted(
        (e for e in entries if now - e["beat"] < STALE_SECONDS), key=lambda e: e["started"]
    )


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
