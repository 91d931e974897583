"""Removing stored notifications no subscription can still receive (Redis store).

A notification is needed only by active subscriptions whose cursor is before it; a new
subscription starts at the stream's end and never reads older entries. So every few seconds one
hub server (a short lease) removes, per topic, everything at or before the oldest cursor of the
topic's active subscriptions, and everything of a topic that has none. Without this a topic
nobody subscribes to, or whose subscribers are all up to date, would hold its cap of entries
forever, and the global cap would refuse publishes although nobody waits for anything.

Why nothing needed is removed, in the order of one pass: (1) the newest position of each topic
is read, and only entries up to it can go; (2) the topics a subscription is starting on: a
verifier adds a token to `starting:<topic>` before it reads where the subscription starts and
removes it once the cursor is written, and such a topic is left alone this pass; (3) the active
subscriptions, then their cursors (a topic with an active subscription but no cursor is left
alone too). A subscription whose token was gone at (2) had its row and cursor written before,
so (3) sees them; one whose token came after (2) starts after (1), past everything removed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from fnhub import lease
from fnhub.redis_replies import as_list, as_optional_list
from fnhub.websub.store import RedisStore

if TYPE_CHECKING:
    from fnhub.websub.hub import Hub

log = logging.getLogger("fnhub.websub")

RECLAIM_EVERY_SECONDS = 5.0
STARTING_SECONDS = 120  # how long a verification's `starting` marker lasts (≫ one verification)


class Reclaimer:
    def __init__(self, hub: Hub, store: RedisStore) -> None:
        self.hub = hub
        self.store = store

    async def run(self) -> None:
        hub = self.hub
        while True:
            await asyncio.sleep(RECLAIM_EVERY_SECONDS)
            try:
                ttl = RECLAIM_EVERY_SECONDS * 0.8  # one server per period
                if await lease.take(hub.redis, hub.keys.websub_reclaim_lease, hub.server_id, ttl):
                    await self.once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("websub reclaim pass failed, retrying: %s", exc)

    async def once(self) -> int:
        """One pass over every topic with stored notifications; returns how many were removed."""
        hub, keys = self.hub, self.hub.keys
        topics = [t.decode() for t in as_list(await hub.redis.hkeys(keys.websub_stored))]
        if not topics:
            return 0
        async with hub.redis.pipeline(transaction=False) as pipe:
            for t in topics:
                pipe.xrevrange(keys.websub_topic(t), count=1)
            newest_rows = await pipe.execute()
        newest = {
            t: rows[0][0].decode() for t, rows in zip(topics, newest_rows, strict=True) if rows
        }
        if not newest:
            return 0
        async with hub.redis.pipeline(transaction=False) as pipe:
            for t in newest:
                pipe.exists(keys.websub_starting(t))
            starting = dict(zip(newest, await pipe.execute(), strict=True))
        active = await asyncio.to_thread(hub.registry.active_by_topic, time.time())
        ids = [sid for t in newest for sid in active.get(t, ())]
        found = as_optional_list(await hub.redis.hmget(keys.websub_cursors, ids)) if ids else []
        cursors = dict(zip(ids, found, strict=True))
        upto: dict[str, str] = {}
        for t, position in newest.items():
            held = [cursors[sid] for sid in active.get(t, ())]
            known = [c for c in held if c is not None]
            if starting[t] or len(known) < len(held):  # a subscriber without a cursor yet
                continue
            limit = min(
                [self.store.order(position), *(self.store.order(c.decode()) for c in known)]
            )
            upto[t] = f"{limit[0]}-{limit[1]}"
        return await self.store.reclaim(upto) if upto else 0
