"""Items shared among the live members of a group, each item held under a Redis lease (a Kafka
subscription's partitions in `multiple` mode, `assignment: lease`).

Every member calls `tick(asking)` about every `ttl / 6`. One Lua call renews its membership (a
sorted set scored by expiry, by Redis's clock), drops members whose entry lapsed, takes or
renews the lease of each item asked for (take when free, renew when ours: `lease.HOLD` for
many keys) and returns the live members. Which items a member should hold is `divide(items,
members)`, the same for every member that sees the same members: rendezvous hashing (each
item goes to the member ranking it highest) with every member's count capped at its fair share,
so the items are spread evenly and a member joining or leaving moves few of them.

A member holds an item by its own clock, as `lease.Lease` does: until `ttl - margin` after it
*sent* the call that took or renewed it; Redis counts from later, so nobody else can take the
item meanwhile. A failed call (Redis away) keeps what is held until then. A killed member's
items are free `ttl` after its last renewal, and its entry is gone as soon: the survivors ask
for its items at their next tick. Sooner when its process is gone (`fnhub.holders`): a member
that finds another stale (two ticks missed) and without a connection to Redis drops its entry
and takes its items, each only while still that stale, in the same Lua call.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Collection, Iterable
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError

from fnhub.holders import Watch, name_connections
from fnhub.lease import RENEWALS_PER_TTL, RETRIES_PER_TTL, raise_if_cancelled, stale_below
from fnhub.redis_replies import as_str

# KEYS[1]: the members (sorted set, score = expiry in ms); KEYS[2..]: the items' leases
# ARGV[1]: this member; ARGV[2]: the TTL in ms; ARGV[3]: stale below (ms); ARGV[4..]: processes
# judged gone (`fnhub.holders`): their stale entries are dropped, their stale leases taken.
# Returns {members and scores, {1|0 per item}, {holder or "" per item}, {PTTL per item}, now}.
TICK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local stale = tonumber(ARGV[3])
local gone = {}
for i = 4, #ARGV do gone[ARGV[i]] = true end
local function dead(owner, left)
  return left >= 0 and left < stale and gone[string.match(owner, '^[^/]*')]
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if #ARGV > 3 then
  local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    local m = entries[i]
    if dead(m, tonumber(entries[i + 1]) - now) then redis.call('ZREM', KEYS[1], m) end
  end
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
local held, holders, lefts = {}, {}, {}
for i = 2, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  local left = 0
  if holder and holder ~= ARGV[1] then left = redis.call('PTTL', KEYS[i]) end
  if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[i], ttl) held[i - 1] = 1 holder = ''
  elseif not holder or dead(holder, left) then
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ttl) held[i - 1] = 1 holder = ''
  else held[i - 1] = 0 end
  holders[i - 1] = holder
  lefts[i - 1] = left
end
return {redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), held, holders, lefts, now}
"""
# KEYS[1]: the members; KEYS[2..]: leases to give up if ours; ARGV[1]: this member;
# ARGV[2]: 1 to leave the members too
LEAVE = """
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
if ARGV[2] == '1' then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""


def _rank(member: str, item: str) -> bytes:
    return hashlib.blake2b(f"{member}\0{item}".encode(), digest_size=8).digest()


def divide(items: Iterable[str], members: Collection[str]) -> dict[str, str]:
    """item → the member that should hold it: the highest-ranking member (rendezvous hashing)
    that has not reached its share yet (the first `len(items) % len(members)` to get there may
    take one more). Deterministic: every member computes the same from the same view."""
    items = sorted(items)
    if not members:
        return {}
    floor, extra = divmod(len(items), len(members))
    load = dict.fromkeys(members, 0)
    out: dict[str, str] = {}
    for item in items:
        for m in sorted(members, key=lambda m: _rank(m, item), reverse=True):
            n = load[m]
            if n < floor or (n == floor and extra > 0):
                if n == floor:
                    extra -= 1
                load[m] = n + 1
                out[item] = m
                break
    return out


class Shares:
    """One member's view of a group sharing items under leases; see the module docstring."""

    def __init__(
        self,
        client: aredis.Redis,
        members_key: str,
        item_prefix: str,
        member: str,
        ttl: float = 3.0,
        margin: float | None = None,
        connection: str | None = None,
    ) -> None:
        """`connection`: what to name `client`'s connections at the first tick, for a client
        of its own (a direct child's: `fnhub.holders.name_connections`)."""
        self.client = client
        self._connection = connection
        self.members_key = members_key
        self.item_prefix = item_prefix  # an item's lease key is this + the item
        self.member = member
        self.ttl = ttl
        self.margin = ttl / 10 if margin is None else margin
        self.members: list[str] = []  # the live members at the last tick (sorted)
        self.error: Exception | None = None  # why the last call failed (None: it did not)
        self._until: dict[str, float] = {}  # item → monotonic time it lapses for us
        self._tick = client.register_script(TICK)
        self._stale = stale_below(ttl)
        self.watch = Watch(member)  # whether stale members' processes are gone
        self._leave = client.register_script(LEAVE)

    def holds(self, item: str) -> bool:
        """Whether `item` is ours now, by our clock."""
        return time.monotonic() < self._until.get(item, 0.0)

    def held(self) -> set[str]:
        now = time.monotonic()
        return {item for item, until in self._until.items() if now < until}

    def wanted(self, items: Iterable[str]) -> set[str]:
        """The items this member should hold, by the members seen at the last tick; none
        before a tick has counted it among them (a first view would be itself alone)."""
        if self.member not in self.members:
            return set()
        return {item for item, m in divide(items, self.members).items() if m == self.member}

    def renew_in(self) -> float:
        """When to tick next: at the usual pace, sooner after a failure, never after an item
        held lapsed."""
        pace = self.ttl / (RETRIES_PER_TTL if self.error is not None else RENEWALS_PER_TTL)
        now = time.monotonic()
        lefts = [until - now for until in self._until.values() if until > now]
        return min([pace, *lefts])

    async def tick(self, asking: Collection[str]) -> None:
        """Renew the membership; take or renew each item in `asking` (items held and not asked
        for should have been `release`d). Never raises for Redis being unreachable or slow:
        that is `error`, and what is held stays held until it lapses."""
        if self._connection is not None:
            name, self._connection = self._connection, None
            await name_connections(self.client, name)
        asking = sorted(asking)
        sent = time.monotonic()
        lefts = [until - sent for until in self._until.values() if until > sent]
        patience = min(lefts) if lefts else self.ttl / 3
        keys = [self.members_key, *(self.item_prefix + item for item in asking)]
        try:
            async with asyncio.timeout(patience):
                answer = await self._call(keys)
                if await self._others_gone(answer):
                    sent = time.monotonic()
                    answer = await self._call(keys)
            raise_if_cancelled()
        except (RedisError, OSError, TimeoutError) as exc:
            raise_if_cancelled()
            self.error = exc if str(exc) else TimeoutError(f"no answer in {patience:.1f}s")
            return
        self.error = None
        entries, held = answer[0], answer[1]
        self.members = sorted(as_str(m) for m in entries[::2])
        until = sent + self.ttl - self.margin
        for item, ok in zip(asking, held, strict=True):
            if ok:
                self._until[item] = until
            else:
                self._until.pop(item, None)
        for item in set(self._until) - set(asking):  # not renewed: lapsing
            if self._until[item] <= sent:
                del self._until[item]

    async def _call(self, keys: list[str]) -> list[Any]:
        args: list[str | int] = [self.member, int(self.ttl * 1000), self._stale]
        args += self.watch.gone()
        return list(await self._tick(keys=keys, args=args))

    async def _others_gone(self, answer: list[Any]) -> bool:
        """Whether a stale member or holder of an item asked for is newly judged gone (a
        CLIENT LIST, only when one is new to us or stale)."""
        entries, _, holders, lefts, now = answer
        owners: set[str] = set()
        stale: set[str] = set()
        for member, score in zip(entries[::2], entries[1::2], strict=True):
            owners.add(as_str(member))
            if 0 <= float(score) - now < self._stale:
                stale.add(as_str(member))
        for holder, left in zip(holders, lefts, strict=True):
            if holder:
                owners.add(as_str(holder))
                if 0 <= int(left) < self._stale:
                    stale.add(as_str(holder))
        owners.discard(self.member)
        stale.discard(self.member)
        if not self.watch.wants_list(owners, stale):
            return False
        return bool(await self.watch.judge(self.client, owners, stale))

    async def release(self, items: Iterable[str], *, leave: bool = False) -> None:
        """Give `items` up now (those still ours), and with `leave` the membership too, so the
        others need not wait for them to lapse; a Redis that does not answer within a second
        lets them lapse instead."""
        items = list(items)
        for item in items:
            self._until.pop(item, None)
        keys = [self.members_key, *(self.item_prefix + item for item in items)]
        try:
            async with asyncio.timeout(1.0):
                await self._leave(keys=keys, args=[self.member, "1" if leave else "0"])
            raise_if_cancelled()
        except (RedisError, OSError, TimeoutError):
            raise_if_cancelled()

    async def leave(self) -> None:
        """Give up every item held and the membership."""
        await self.release(list(self._until), leave=True)
