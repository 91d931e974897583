"""Whether a lease holder's process is gone, before its lease lapses (early takeover).

A process killed outright (kill -9, OOM) stops renewing its leases, and the kernel closes its
connections at once; one cut off from Redis (a partition, a frozen host) or merely slow keeps
them open on Redis's side. So every process that holds leases names its Redis connections
after itself (`name_connections`: CLIENT SETNAME, `fnhub-<kind>:<process>`; a worker
supervisor's `fnhub-worker:<id>` fits the pattern), a lease owner is its process's id or that
id, "/" and more (`process_of`), and a standby that finds a holder stale (two renewals missed,
seen in the lease's PTTL) asks CLIENT LIST whether a connection of that process is still open
(`Watch`). None open: the holder is gone, and its lease may be taken (atomically, in Lua, only
while the key still holds that owner and is still that stale: `lease.HOLD`, `shares.TICK`).

A verdict needs more than an absent name:
- the holder was seen connected under its name by this standby before (a holder that cannot
  name its connections, an ACL refusing CLIENT SETNAME or an older version, is never judged);
- the standby's own connections are QUIET_SECONDS old: on a Redis restarted, or a new primary
  after a Sentinel failover, nobody is connected yet and live holders are still reconnecting.
Where CLIENT LIST is refused (an ACL), nobody is judged: leases lapse as before.

`Unconnected` judges holders that say they name their connections (a direct child's Redis
Streams consumer, in its liveness key; a worker supervisor, in its heartbeat description)
without having seen them connected: listed only once one is stale, it wants no connection of
theirs on two lists a fraction of a renewal apart. Both the direct consumers' reader and the
worker supervisors (dead workers, `Supervisor._reclaim_dead_workers`) judge through it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

import redis
import redis.asyncio as aredis
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger(__name__)

#: connection names this module reads: `fnhub-<kind>:<process id>`
NAME_PREFIX = "fnhub-"
#: a holder is stale once it missed this many renewals (`lease.stale_below`)
STALE_RENEWALS = 2
#: no verdict while our own connections are younger than this (a restarted or new primary)
QUIET_SECONDS = 3
#: a process judged gone stays so this long (the next calls take its leases without a list)
GONE_SECONDS = 10.0
NAME_TIMEOUT = 2.0


def process_of(owner: str) -> str:
    """The process a lease owner belongs to: the owner up to its first "/"."""
    return owner.split("/", 1)[0]


def connection_name(kind: str, process: str) -> str:
    return f"{NAME_PREFIX}{kind}:{process}"


def connected(clients: Iterable[dict[str, Any]], kind: str | None = None) -> dict[str, int]:
    """Process id → age in seconds of its oldest named connection, from CLIENT LIST; only
    processes of `kind` (`connection_name`) when given."""
    prefix = connection_name(kind, "") if kind else NAME_PREFIX
    ages: dict[str, int] = {}
    for conn in clients:
        name = str(conn.get("name") or "")
        if name.startswith(prefix) and ":" in name:
            process = name.partition(":")[2]
            ages[process] = max(ages.get(process, 0), int(conn.get("age") or 0))
    return ages


async def name_connections(client: aredis.Redis, name: str) -> bool:
    """Name `client`'s connections (this one now, every new one at connect). Refused (an ACL)
    or Redis unreachable: left unnamed, and this process's leases are never taken early (a
    standby never saw it connected: `Watch`)."""
    try:
        async with asyncio.timeout(NAME_TIMEOUT):
            await client.client_setname(name)
    except (RedisError, OSError, TimeoutError) as exc:
        log.info("Redis connections left unnamed (%s): leases held here lapse when it dies", exc)
        return False
    client.connection_pool.connection_kwargs["client_name"] = name
    return True


class Watch:
    """One standby's look at the processes holding what it waits for. `wants_list` says when
    a CLIENT LIST is worth it (a holder never looked at, or a stale one seen before and not
    judged yet): never while every holder renews."""

    def __init__(self, own: str) -> None:
        self.own = process_of(own)
        self.refused = False  # CLIENT LIST not allowed: no verdicts
        self.looked: set[str] = set()  # holders' processes listed at least once
        self.seen: set[str] = set()  # of those, the ones seen connected under their name
        self._gone: dict[str, float] = {}  # process → when judged gone (monotonic)

    def gone(self) -> list[str]:
        """The processes judged gone lately."""
        now = time.monotonic()
        self._gone = {p: at for p, at in self._gone.items() if now - at < GONE_SECONDS}
        return sorted(self._gone)

    def wants_list(self, owners: Iterable[str], stale: Iterable[str]) -> bool:
        if self.refused:
            return False
        procs = {process_of(o) for o in owners} - {self.own}
        stale_procs = {process_of(o) for o in stale} - {self.own}
        return bool(procs - self.looked) or bool((stale_procs & self.seen) - set(self.gone()))

    async def judge(self, client: aredis.Redis, owners: set[str], stale: set[str]) -> set[str]:
        """CLIENT LIST once; the processes of `stale` owners now judged gone."""
        try:
            listed = await client.client_list(_type="normal")
        except ResponseError as exc:
            return self._refused(exc)
        return self.update(connected(listed), owners, stale)

    def judge_sync(self, client: redis.Redis, owners: set[str], stale: set[str]) -> set[str]:
        """`judge` on a synchronous client (a worker supervisor's)."""
        try:
            listed = client.client_list(_type="normal")
        except ResponseError as exc:
            return self._refused(exc)
        return self.update(connected(listed), owners, stale)

    def _refused(self, exc: ResponseError) -> set[str]:  # an ACL without CLIENT LIST
        log.info("cannot list Redis connections (%s): leases are taken once they lapse", exc)
        self.refused = True
        return set()

    def update(self, ages: dict[str, int], owners: set[str], stale: set[str]) -> set[str]:
        """What a CLIENT LIST (`connected`) says of `owners`, `stale` among them."""
        procs = {process_of(o) for o in owners} - {self.own}
        self.seen = (self.seen | (procs & ages.keys())) & procs
        self.looked = procs
        if ages.get(self.own, 0) < QUIET_SECONDS:
            return set()
        stale_procs = {process_of(o) for o in stale} - {self.own}
        now = time.monotonic()
        gone = {p for p in stale_procs & self.seen if p not in ages}
        for p in gone:
            self._gone[p] = now
        return gone


class Unconnected:
    """Stale holders judged by their absence from CLIENT LIST alone, for holders that say
    they name their connections (a worker child's direct stream consumer writes so in its
    liveness key) rather than having been seen connected (`Watch`): gone once no connection
    of theirs was listed on two lists `confirm` seconds apart (a reconnection in flight is
    not a death), never while our own connections are younger than `quiet` seconds
    (QUIET_SECONDS unless the caller's clock is another, a worker supervisor's beats). Listed
    only when some holder is stale; refused (an ACL): nobody is judged again."""

    def __init__(self, kind: str, own: str, confirm: float, quiet: float = QUIET_SECONDS) -> None:
        self.kind = kind
        self.own = own
        self.confirm = confirm
        self.quiet = quiet
        self.refused = False
        self.judged = 0  # CLIENT LISTs read with our own connections quiet
        self._absent: dict[str, float] = {}  # stale holder → first listed without connection

    @property
    def confirming(self) -> bool:
        """A stale holder waits for its second list."""
        return bool(self._absent)

    def judge_sync(self, client: redis.Redis, stale: set[str]) -> set[str]:
        """Of these stale holders' processes, the ones gone (one CLIENT LIST if any)."""
        self._absent = {p: at for p, at in self._absent.items() if p in stale}
        if not stale or self.refused:
            return set()
        try:
            listed = client.client_list(_type="normal")
        except ResponseError as exc:  # an ACL without CLIENT LIST
            log.info("cannot list Redis connections (%s): holders are dead once they lapse", exc)
            self.refused = True
            self._absent.clear()
            return set()
        return self.update(connected(listed, self.kind), stale, time.monotonic())

    def update(self, ages: dict[str, int], stale: set[str], now: float) -> set[str]:
        """What a CLIENT LIST (`connected`) read at `now` says of the `stale` processes."""
        self._absent = {p: at for p, at in self._absent.items() if p in stale}
        if ages.get(self.own, 0) < self.quiet:
            self._absent.clear()
            return set()
        self.judged += 1
        gone = set()
        for process in stale - {self.own}:
            if process in ages:
                self._absent.pop(process, None)
            elif now - self._absent.setdefault(process, now) >= self.confirm:
                gone.add(process)
        return gone
