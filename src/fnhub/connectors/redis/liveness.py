"""Stream consumer liveness: a short-lived key per consumer, renewed while its server lives.

A consumer group cannot tell a dead consumer from a slow one: both leave entries pending, and
`claim_idle_ms` must stay long enough not to steal a slow handler's entries. So each consumer
keeps `fnhub:stream-consumer:<group>:<consumer>` alive (SET PX `ALIVE_TTL_MS`, every
`RENEW_SECONDS`); once it is gone (the server died) the other consumers claim its pending entries
at their next pass, seconds after the death, while a live consumer's entries are only claimed by
idle time as before. The check and the claim are one script, so a consumer that comes back
(same name, after a restart) between them cannot lose its entries to another.

A direct path's consumer (a worker child, `connectors.redis.direct`) is found dead sooner: it
names its connections after itself (`fnhub.holders`: `fnhub-child:<consumer>`), renews its
key twice as often (`FAST_RENEW_SECONDS`) and says both in the key's value (`key_value`), so
once its key is stale (`STALE_RENEWALS` renewals missed, read from the key's PTTL) and CLIENT
LIST shows no connection of it, its entries are claimed while its key still lives
(`SyncConsumerLiveness.dead_consumers`, `holders.Unconnected`). The script then claims only
while the key is still that stale: a consumer that renewed meanwhile keeps its entries.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aredis

from fnhub.connectors.redis.client import as_text
from fnhub.holders import STALE_RENEWALS
from fnhub.redis_replies import PendingEntry, as_str

ALIVE_TTL_MS = 3000  # a consumer not renewed for this long is dead
RENEW_SECONDS = 1.0  # renewal and dead-consumer check period: three renewals per TTL
CLAIM_BATCH = 1000  # entries claimed per script call (Lua's unpack has a limit)
#: a direct consumer's renewal period: stale (two missed) 1 s after its last renewal
FAST_RENEW_SECONDS = 0.5
#: consumers silent for less than this are not looked at: none of them is stale yet
STALE_MS = int(STALE_RENEWALS * FAST_RENEW_SECONDS * 1000)
#: the key's value of a consumer whose connections carry its name, then its TTL and renewal
#: period (ms)
NAMED = "named"
LAPSED = -2  # the PTTL of a missing key: the claim's bound when only a lapse counts

# KEYS: stream, the dead consumer's liveness key
# ARGV: group, dead consumer, claiming consumer, count, the key's highest PTTL allowed (-2:
# lapsed only; otherwise stale, not renewed since it was judged)
CLAIM_IF_DEAD = """
if redis.call('PTTL', KEYS[2]) > tonumber(ARGV[5]) then return {} end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', ARGV[4], ARGV[2])
if #pending == 0 then return {} end
local ids = {}
for i, entry in ipairs(pending) do ids[i] = entry[1] end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, unpack(ids))
"""


def alive_key(group: str, consumer: str) -> str:
    return f"fnhub:stream-consumer:{group}:{consumer}"


def key_value(named: bool, ttl_ms: int, renew_ms: int) -> bytes:
    """A direct consumer's key value: whether its connections carry its name, its TTL (its
    key's age is the TTL less the PTTL) and its renewal period. The server's consumers write
    "1": never stale."""
    return f"{NAMED if named else 'unnamed'} {ttl_ms} {renew_ms}".encode()


def stale_below(value: Any) -> int | None:
    """The PTTL under which a key of this value is stale (`STALE_RENEWALS` renewals missed),
    if its consumer names its connections (None: it can only lapse)."""
    words = as_str(value).split() if value is not None else []
    if len(words) != 3 or words[0] != NAMED or not (words[1].isdigit() and words[2].isdigit()):
        return None
    return int(words[1]) - STALE_RENEWALS * int(words[2])


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
        silent = _silent(await self.client.xinfo_consumers(stream, self.group), self.consumer)
        candidates = [name for name, _idle in silent]
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
            args=[self.group, dead, self.consumer, min(count, CLAIM_BATCH), LAPSED],
        )
        return [(entry_id, _fields(flat)) for entry_id, flat in reply if flat is not None]


class SyncConsumerLiveness:
    """`ConsumerLiveness` for a synchronous client: a worker child consuming the stream
    itself (the direct path, `connectors.redis.direct`)."""

    def __init__(
        self,
        client: redis.Redis,
        group: str,
        consumer: str,
        *,
        named: bool = False,
        ttl_ms: int = ALIVE_TTL_MS,
        renew_seconds: float = FAST_RENEW_SECONDS,
    ) -> None:
        self.client = client
        self.group = group
        self.consumer = consumer
        self.value = key_value(named, ttl_ms, int(renew_seconds * 1000))
        self.ttl_ms = ttl_ms
        self._claim_if_dead = client.register_script(CLAIM_IF_DEAD)

    def renew(self) -> None:
        self.client.set(alive_key(self.group, self.consumer), self.value, px=self.ttl_ms)

    def dead_consumers(self, stream: str) -> tuple[list[str], dict[str, int]]:
        """Consumers of `stream` other than us holding entries and silent for `STALE_MS`:
        those whose key lapsed (and silent for the TTL: dead, as `ConsumerLiveness` finds
        them), and those whose key is stale and who name their connections, each with the
        PTTL its key is stale under (dead if they have no connection: the caller asks)."""
        consumers = self.client.xinfo_consumers(stream, self.group)
        idle = {name: ms for name, ms in _silent(consumers, self.consumer, STALE_MS)}
        if not idle:
            return [], {}
        pipe = self.client.pipeline(transaction=False)
        for name in idle:
            pipe.pttl(alive_key(self.group, name))
            pipe.get(alive_key(self.group, name))
        answers = pipe.execute()
        lapsed, stale = [], {}
        for (name, ms), pttl, value in zip(idle.items(), answers[::2], answers[1::2], strict=True):
            below = stale_below(value)
            if pttl == LAPSED and ms > ALIVE_TTL_MS:
                lapsed.append(name)
            elif pttl >= 0 and below is not None and pttl <= below:
                stale[name] = below
        return lapsed, stale

    def claim_from(
        self, stream: str, dead: str, count: int, stale_below: int = LAPSED
    ) -> list[PendingEntry]:
        """As `ConsumerLiveness.claim_from`; with `stale_below`, also while `dead`'s key
        lives but is still stale (not renewed since we found it so)."""
        reply: list[Any] = self._claim_if_dead(
            keys=[stream, alive_key(self.group, dead)],
            args=[self.group, dead, self.consumer, min(count, CLAIM_BATCH), stale_below],
        )
        return [(entry_id, _fields(flat)) for entry_id, flat in reply if flat is not None]


def _silent(consumers: Any, me: str, idle_ms: int = ALIVE_TTL_MS) -> list[tuple[str, int]]:
    """Consumers (XINFO CONSUMERS) other than `me` holding entries and silent for `idle_ms`,
    with their idle time."""
    return [
        (as_text(c["name"]), int(c["idle"]))
        for c in consumers
        if c["pending"] and c["idle"] > idle_ms and as_text(c["name"]) != me
    ]


def _fields(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
