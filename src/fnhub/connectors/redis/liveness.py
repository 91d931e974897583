"""Stream consumer liveness: a short-lived key per consumer, renewed while its server lives.

A consumer group cannot tell a dead consumer from a slow one: both leave entries pending, and
`claim_idle_ms` must stay long enough not to steal a slow handler's entries. So each consumer
keeps `fnhub:stream-consumer:<group>:<consumer>` alive (SET PX `ALIVE_TTL_MS`, every
`RENEW_SECONDS`); once it is gone (the server died) the other consumers claim its pending entries
at their next pass, seconds after the death, while a live consumer's entries are only claimed by
idle time as before. The check and the claim are one script, so a consumer that comes back
(same name, after a restart) between them cannot lose its entries to another.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aredis

from fnhub.connectors.redis.client import as_text
from fnhub.redis_replies import PendingEntry

ALIVE_TTL_MS = 3000  # a consumer not renewed for this long is dead
RENEW_SECONDS = 1.0  # renewal and dead-consumer check period: three renewals per TTL
CLAIM_BATCH = 1000  # entries claimed per script call (Lua's unpack has a limit)

# KEYS: stream, the dead consumer's liveness key
# ARGV: group, dead consumer, claiming consumer, count
CLAIM_IF_DEAD = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', ARGV[4], ARGV[2])
if #pending == 0 then return {} end
local ids = {}
for i, entry in ipairs(pending) do ids[i] = entry[1] end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, unpack(ids))
"""


def alive_key(group: str, consumer: str) -> str:
    return f"fnhub:stream-consumer:{group}:{consumer}"


class ConsumerLiveness:
    """One consumer's side: keep itself alive, and take over dead consumers' entries."""

    def __init__(self, client: aredis.Redis, group: str, consumer: str) -> None:
        self.client = client
        self.group = group
        self.consumer = consumer
        self._claim_if_dead = client.register_script(CLAIM_IF_DEAD)

    async def renew(self) -> None:
        await self.client.set(alive_key(self.group, self.consumer), b"1", px=ALIVE_TTL_MS)

    async def dead_consumers(self, stream: str) -> list[str]:
        """Consumers of `stream` other than us with pending entries and no sign of life:
        neither their key nor any command of theirs within `ALIVE_TTL_MS`."""
        candidates = _silent(await self.client.xinfo_consumers(stream, self.group), self.consumer)
        if not candidates:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for name in candidates:
                pipe.exists(alive_key(self.group, name))
            answers = await pipe.execute()
        return [name for name, exists in zip(candidates, answers, strict=True) if not exists]

    async def claim_from(self, stream: str, dead: str, count: int) -> list[PendingEntry]:
        """Claim up to `count` of `dead`'s pending entries, unless it came back meanwhile.
        Deleted entries leave the pending list without being returned."""
        reply: list[Any] = await self._claim_if_dead(
            keys=[stream, alive_key(self.group, dead)],
            args=[self.group, dead, self.consumer, min(count, CLAIM_BATCH)],
        )
        return [(entry_id, _fields(flat)) for entry_id, flat in reply if flat is not None]


class SyncConsumerLiveness:
    """`ConsumerLiveness` for a synchronous client: a worker child consuming the stream
    itself (the direct path, `connectors.redis.direct`)."""

    def __init__(self, client: redis.Redis, group: str, consumer: str) -> None:
        self.client = client
        self.group = group
        self.consumer = consumer
        self._claim_if_dead = client.register_script(CLAIM_IF_DEAD)

    def renew(self) -> None:
        self.client.set(alive_key(self.group, self.consumer), b"1", px=ALIVE_TTL_MS)

    def dead_consumers(self, stream: str) -> list[str]:
        """As `ConsumerLiveness.dead_consumers`."""
        candidates = _silent(self.client.xinfo_consumers(stream, self.group), self.consumer)
        if not candidates:
            return []
        pipe = self.client.pipeline(transaction=False)
        for name in candidates:
            pipe.exists(alive_key(self.group, name))
        answers = pipe.execute()
        return [name for name, exists in zip(candidates, answers, strict=True) if not exists]

    def claim_from(self, stream: str, dead: str, count: int) -> list[PendingEntry]:
        """As `ConsumerLiveness.claim_from`."""
        reply: list[Any] = self._claim_if_dead(
            keys=[stream, alive_key(self.group, dead)],
            args=[self.group, dead, self.consumer, min(count, CLAIM_BATCH)],
        )
        return [(entry_id, _fields(flat)) for entry_id, flat in reply if flat is not None]


def _silent(consumers: Any, me: str) -> list[str]:
    """Consumers (XINFO CONSUMERS) other than `me` holding entries and silent for the TTL."""
    return [
        as_text(c["name"])
        for c in consumers
        if c["pending"] and c["idle"] > ALIVE_TTL_MS and as_text(c["name"]) != me
    ]


def _fields(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
