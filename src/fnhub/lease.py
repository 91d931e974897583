"""Leases in Redis: one holder at a time, renewed before they lapse, kept through short outages.

A lease is a key holding its owner's id, with a TTL. `HOLD` takes it when free or renews it
when ours, in one atomic call; `RELEASE` deletes it only if ours; `RENEW_MANY` renews many at
once (the WebSub hub's claims). Every lease in fnhub goes through this module: subscriptions'
`single` mode, the cron beat's leadership and the WebSub ingest forwarder (`Lease`), the WebSub
delivery claims (`Claims`), and leases taken once and left to lapse (`take`: the WebSub
reclaim pass, the supervisor's release of a dead worker's consumer). Items shared among the
members of a group, each under a lease of this kind (a Kafka subscription's partitions in
`multiple` mode), are `fnhub.shares`'.

`Lease` is one owner's view of one lease, by its own clock: it holds the lease until `ttl`
minus a safety margin after it *sent* the last call that took or renewed it. Redis counts the
TTL from when it ran that call, which is later, so nobody else can take the lease while we
think we hold it. A failed renewal (Redis restarting, a network blip, a frozen server) does not
drop the lease: the owner keeps holding it, and serving, and retries; the lease is lost only
when Redis says another owner holds it, or when it has lapsed by our clock.

A holder killed outright need not be waited for: a standby that finds it stale (`stale_below`:
two renewals missed) and its process without a connection to Redis takes the lease at once
(`fnhub.holders`); so does a WebSub server take a killed one's claims (`Claims.take`). A live
holder taken from that way (its connections closed while it stalled) finds another holder at its
next renewal and stops: the overlap is at most that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError

from fnhub.holders import STALE_RENEWALS, Watch
from fnhub.redis_replies import as_str

log = logging.getLogger(__name__)

# ARGV: owner, TTL in ms[, stale below (ms), processes judged gone...]. Returns 1 (renewed), 2
# (taken, free), 3 (taken from a gone holder: stale, its process in ARGV[4..]) or {holder, PTTL}.
HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
local left = redis.call('PTTL', KEYS[1])
if #ARGV > 3 and left >= 0 and left < tonumber(ARGV[3]) then
  local process = string.match(holder, '^[^/]*')
  for i = 4, #ARGV do
    if ARGV[i] == process then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 3 end
  end
end
return {holder, left}
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
RENEW_MANY = """
local r = {}
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then redis.call('PEXPIRE', k, ARGV[2]); r[i] = 1
  else r[i] = 0 end
end
return r
"""

RENEWALS_PER_TTL = 6  # a renewal every ttl/6: five can fail before the lease is in danger
RETRIES_PER_TTL = 15  # after a failed renewal, retry every ttl/15 while we still hold it
TAKEN_FROM_GONE = 3  # HOLD's answer: taken from a holder whose process is gone


def stale_below(ttl: float) -> int:
    """The PTTL (ms) under which a lease's holder missed STALE_RENEWALS renewals."""
    return int(ttl * 1000 * (1 - STALE_RENEWALS / RENEWALS_PER_TTL))


def hold_args(owner: str, ttl: float, watch: Watch) -> list[Any]:
    """HOLD's arguments: with the processes `watch` judged gone, their stale leases taken."""
    gone = watch.gone()
    return [owner, int(ttl * 1000), *([stale_below(ttl), *gone] if gone else [])]


def other_holder(answer: list[Any], ttl: float) -> tuple[str, set[str]]:
    """HOLD's answer when another owner holds the lease: that owner, and it again if stale."""
    holder, left = as_str(answer[0]), int(answer[1])
    return holder, {holder} if 0 <= left < stale_below(ttl) else set()


def raise_if_cancelled() -> None:
    """Raise a cancellation that a Redis call swallowed. A task cancelled while its call was
    under way sometimes saw the call return, or fail, instead of the CancelledError, and went on
    renewing with `cancelling()` still 1, forever (tests/test_shares.py hung about one run in
    ten). Every renewal loop's Redis call is followed by this, answered or failed: `Lease` and
    `fnhub.shares.Shares`."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Lease:
    """One owner's hold on one lease key; see the module docstring."""

    def __init__(
        self, client: aredis.Redis, key: str, owner: str, ttl: float, margin: float | None = None
    ) -> None:
        self.redis = client
        self.key = key
        self.owner = owner
        self.ttl = ttl
        #: held until `margin` before Redis may expire it (clock rates differ a little, and
        #: the holder needs a moment to stop what the lease guards)
        self.margin = ttl / 10 if margin is None else margin
        self.holder: str | None = None  # who holds it, as far as we know
        self.error: Exception | None = None  # why the last call failed (None: it did not)
        self._until = 0.0  # monotonic time it lapses for us
        self._hold = client.register_script(HOLD)
        self.watch = Watch(owner)  # whether the holder's process is gone
        self._release = client.register_script(RELEASE)

    @property
    def held(self) -> bool:
        return time.monotonic() < self._until

    def left(self) -> float:
        """Seconds it is still ours by our clock (0 when not held)."""
        return max(self._until - time.monotonic(), 0.0)

    def renew_in(self) -> float:
        """When to call `hold` next while held: at the usual pace, sooner after a failure,
        and never after it lapsed."""
        pace = self.ttl / (RETRIES_PER_TTL if self.error is not None else RENEWALS_PER_TTL)
        return min(pace, self.left())

    async def hold(self) -> bool:
        """Take the lease when free, renew it when ours; True while it is ours by our clock.

        Never raises for Redis being unreachable or slow: that is `error`, and the lease stays
        held until it lapses. A call is given up when the lease lapses (a late answer could
        not save it), or after a third of the TTL when we do not hold it."""
        sent = time.monotonic()
        patience = self.left() or self.ttl / 3
        try:
            async with asyncio.timeout(patience):
                answer = await self._call()
                if isinstance(answer, list) and await self._holder_gone(answer):
                    sent = time.monotonic()
                    answer = await self._call()
            raise_if_cancelled()
        except (RedisError, OSError, TimeoutError) as exc:
            raise_if_cancelled()
            self.error = exc if str(exc) else TimeoutError(f"no answer in {patience:.1f}s")
            if not self.held:
                self.holder = None  # unknown
            return self.held
        self.error = None
        if answer in (1, 2, TAKEN_FROM_GONE):
            if answer == TAKEN_FROM_GONE:
                log.info("lease %s taken from %s: stale, its process gone", self.key, self.holder)
            self._until = sent + self.ttl - self.margin
            self.holder = self.owner
            return True
        self._until = 0.0
        self.holder = as_str(answer[0])
        return False

    async def _call(self) -> Any:
        return await self._hold(keys=[self.key], args=hold_args(self.owner, self.ttl, self.watch))

    async def _holder_gone(self, answer: list[Any]) -> bool:
        """Whether the holder HOLD named is newly judged gone (a CLIENT LIST, only when the
        holder is new to us or stale)."""
        self.holder, stale = other_holder(answer, self.ttl)
        if not self.watch.wants_list({self.holder}, stale):
            return False
        return bool(await self.watch.judge(self.redis, {self.holder}, stale))

    async def release(self, timeout: float = 1.0) -> None:
        """Give the lease up now (if still ours), so another owner need not wait for it to
        lapse; a Redis that does not answer within `timeout` lets it lapse instead."""
        self._until = 0.0
        self.holder = None
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(timeout):
                await self._release(keys=[self.key], args=[self.owner])
        raise_if_cancelled()


def take(client: Any, key: str, owner: str, ttl: float) -> Any:
    """Take the lease if nobody holds it, left to lapse after `ttl` seconds (SET NX PX).

    `client` is a sync or asyncio Redis client or a pipeline: the result is what its `set`
    returns (truthy when taken; awaitable for asyncio; queued on a pipeline)."""
    return client.set(key, owner, nx=True, px=int(ttl * 1000))


class Claims:
    """Many leases of one owner renewed together (the WebSub hub's delivery claims): taken in
    one pipeline of `HOLD`s (a stale claim of a process `watch` judged gone too), renewed in
    one call, released one by one."""

    def __init__(self, client: aredis.Redis, owner: str, ttl: float) -> None:
        self.redis = client
        self.owner = owner
        self.ttl = ttl
        self.watch = Watch(owner)  # whether holders' processes are gone (`fnhub.holders`)
        self._hold = client.register_script(HOLD)
        self._renew = client.register_script(RENEW_MANY)
        self._release = client.register_script(RELEASE)

    async def take(self, keys: list[str], others: Iterable[str] = ()) -> list[float | None]:
        """Take each key that is free (or ours), or held by a stale holder whose process is
        gone: one CLIENT LIST when a holder is new to `watch` or newly stale, then the stale
        ones again. `others`: the processes the caller watches besides the holders (one set
        for `watch`, else it lists each time the set changes). Per key: None when taken, else
        the seconds until asking again is worth it (its holder goes stale, or it lapses)."""
        answers = await self._hold_each(keys)
        held = {i: other_holder(a, self.ttl) for i, a in enumerate(answers) if isinstance(a, list)}
        owners = {holder for holder, _ in held.values()} | set(others)
        stale = {holder for holder, late in held.values() if late}
        if self.watch.wants_list(owners, stale) and await self.watch.judge(
            self.redis, owners, stale
        ):
            again = [i for i, (_, late) in held.items() if late]
            for i, answer in zip(
                again, await self._hold_each([keys[i] for i in again]), strict=True
            ):
                answers[i] = answer
        return [self._due(answer) for answer in answers]

    async def _hold_each(self, keys: list[str]) -> list[Any]:
        args = hold_args(self.owner, self.ttl, self.watch)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                await self._hold(keys=[key], args=args, client=pipe)
            return list(await pipe.execute())

    def _due(self, answer: Any) -> float | None:
        if not isinstance(answer, list):
            return None
        left = int(answer[1])
        if left < 0:  # no TTL
            return math.inf
        stale = stale_below(self.ttl)
        return (left - stale if left >= stale else left) / 1000

    async def renew(self, keys: list[str]) -> list[bool]:
        """Renew each key still ours; False for those another owner took or that lapsed."""
        answers = await self._renew(keys=keys, args=[self.owner, int(self.ttl * 1000)])
        return [bool(a) for a in answers]

    async def release(self, key: str) -> None:
        """Give one claim up (if still ours)."""
        await self._release(keys=[key], args=[self.owner])
