"""`fnhub.lease.Lease` against a real redis-server of the test's own, restarted and frozen:
a blip shorter than the lease keeps it; a longer outage loses it, by our clock before anyone
else can take it."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aredis
from tests.lease_holder import HolderProcess, lapses_at, redis_now_ms
from tests.private_redis import PrivateRedis, SwallowingRedis, stops_when_cancelled_mid_call

from fnhub.holders import QUIET_SECONDS, connection_name, name_connections
from fnhub.lease import Claims, Lease, stale_below, take

TTL = 3.0


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    with PrivateRedis(tmp_path / "redis") as s:
        yield s


def _client(server: PrivateRedis) -> aredis.Redis:
    return aredis.Redis.from_url(server.url, socket_connect_timeout=0.5)


class Holder:
    """Renews a lease as its owner would, noting whether it held it at every moment."""

    def __init__(self, lease: Lease, *, until_lost: bool = False) -> None:
        self.lease = lease
        self.until_lost = until_lost  # stop renewing once lost (else take it again when free)
        self.samples: list[tuple[float, bool]] = []
        self.task: asyncio.Task[None] | None = None

    async def _renew(self) -> None:
        while await self.lease.hold() or not self.until_lost:
            await asyncio.sleep(self.lease.renew_in() or 0.2)

    async def _sample(self) -> None:
        while True:
            self.samples.append((time.monotonic(), self.lease.held))
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> Holder:
        assert await self.lease.hold()
        self.task = asyncio.gather(self._renew(), self._sample())  # type: ignore[assignment]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def lost_at(self) -> float | None:
        return next((t for t, held in self.samples if not held), None)


async def test_a_restart_shorter_than_the_lease_keeps_it(server: PrivateRedis) -> None:
    owner, rival = _client(server), _client(server)
    lease = Lease(owner, "lease", "a", TTL)
    async with Holder(lease) as holder:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(1.5)
        assert lease.error is not None  # it noticed, and holds on
        await asyncio.to_thread(server.start)
        await asyncio.sleep(TTL)  # past when the lease would have lapsed without renewals
        assert holder.lost_at() is None
        assert lease.held and lease.error is None
        other = Lease(rival, "lease", "b", TTL)
        assert not await other.hold()
        assert other.holder == "a"
    await owner.aclose()
    await rival.aclose()


async def test_a_freeze_shorter_than_the_lease_keeps_it(server: PrivateRedis) -> None:
    """A frozen Redis does not refuse: calls hang. The lease stops waiting on them in time."""
    owner = _client(server)
    lease = Lease(owner, "lease", "a", TTL)
    async with Holder(lease) as holder:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(server.freeze, 1.5)
        await asyncio.sleep(TTL)
        assert holder.lost_at() is None
        assert lease.held and lease.error is None
    await owner.aclose()


async def test_an_outage_longer_than_the_lease_loses_it_before_anyone_can_take_it(
    server: PrivateRedis,
) -> None:
    owner, rival = _client(server), _client(server)
    lease = Lease(owner, "lease", "a", TTL)
    other = Lease(rival, "lease", "b", TTL)
    async with Holder(lease, until_lost=True) as holder:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(server.stop)
        stopped = time.monotonic()
        await asyncio.sleep(TTL + 0.5)
        lost = holder.lost_at()
        assert lost is not None and lost - stopped < TTL  # it lapsed by our clock
        await asyncio.to_thread(server.start)  # the key was saved; Redis expires it now
        while not await other.hold():
            await asyncio.sleep(0.05)
        assert lost < time.monotonic()
        assert not await lease.hold() and lease.holder == "b"
    await owner.aclose()
    await rival.aclose()


async def test_release_frees_it_at_once_and_only_if_ours(server: PrivateRedis) -> None:
    client = _client(server)
    a, b = Lease(client, "lease", "a", TTL), Lease(client, "lease", "b", TTL)
    assert await a.hold() and not await b.hold()
    await b.release()  # not b's: nothing happens
    assert not await b.hold()
    await a.release()
    assert not a.held
    assert await b.hold()
    await client.aclose()


async def test_take_once_then_it_lapses_by_itself(server: PrivateRedis) -> None:
    client = _client(server)
    assert await take(client, "once", "a", 0.3)
    assert not await take(client, "once", "b", 0.3)  # held: nobody else takes it
    await asyncio.sleep(0.5)
    assert await take(client, "once", "b", 0.3)  # lapsed without a release
    await client.aclose()


async def test_claims_renew_only_what_is_still_ours_and_release_one(
    server: PrivateRedis,
) -> None:
    client = _client(server)
    mine, theirs = Claims(client, "a", TTL), Claims(client, "b", TTL)
    assert await mine.take(["c1", "c2"]) == [None, None]
    assert await theirs.take(["c3"]) == [None]
    (wait,) = await theirs.take(["c1"])  # a's, fresh: worth asking when it goes stale
    assert wait is not None and 0 < wait <= TTL - stale_below(TTL) / 1000
    assert await mine.renew(["c1", "c2", "c3"]) == [True, True, False]
    assert await client.pttl("c1") > (TTL - 0.5) * 1000
    await theirs.release("c1")  # not b's: nothing happens
    await mine.release("c2")
    assert await client.get("c1") == b"a" and await client.get("c2") is None
    assert await mine.renew(["c1", "c2"]) == [True, False]
    await client.aclose()


async def test_a_cancellation_its_redis_call_swallowed_still_stops_the_holder(
    server: PrivateRedis,
) -> None:
    """The task renewing the lease is cancelled while its call hangs, and the call returns the
    answer instead of raising: `hold` raises the cancellation, so the loop stops (it renewed
    forever before, as `Shares.tick` did)."""
    client = SwallowingRedis.from_url(server.url, socket_connect_timeout=0.5)
    lease = Lease(client, "lease", "a", TTL)
    assert await lease.hold()  # held: a call hanging through the freeze is not given up
    assert await stops_when_cancelled_mid_call(server, client, lease.hold), (
        "the holder renewed on, cancelled"
    )
    await client.aclose()


# -- a holder killed, stopped or cut off: early takeover (`fnhub.holders`) ---------------------


async def _named(server: PrivateRedis, process: str, url: str | None = None) -> aredis.Redis:
    client = aredis.Redis.from_url(url or server.url, socket_connect_timeout=0.5)
    await name_connections(client, connection_name("server", process))
    return client


async def _standby(lease: Lease) -> int:
    """Poll as a runner's standby does (every 0.5 s) until it takes the lease; when it did, by
    Redis's clock (ms)."""
    while not await lease.hold():
        await asyncio.sleep(0.5)
    return await redis_now_ms(lease.redis)


@pytest.fixture
def holder(server: PrivateRedis) -> Iterator[HolderProcess]:
    process = HolderProcess("lease", server.url, "lease", "old", str(TTL))
    yield process
    process.close()


async def _watching(server: PrivateRedis, holder: HolderProcess, url: str | None = None) -> Lease:
    """A standby that saw `holder` hold the lease, its own connection old enough to judge."""
    lease = Lease(await _named(server, "new", url), "lease", "new", TTL)
    holder.until(lambda r: r["held"])
    assert not await lease.hold() and lease.holder == "old"
    await asyncio.sleep(QUIET_SECONDS)
    assert not await lease.hold()
    return lease


async def test_a_killed_holder_is_replaced_before_its_lease_lapses(
    server: PrivateRedis, holder: HolderProcess
) -> None:
    """kill -9 closes the holder's connections: two renewals missed and none open, the standby
    takes the lease before it lapses (it waited for the lapse before)."""
    lease = await _watching(server, holder)
    holder.signal(signal.SIGKILL)
    lapse = await lapses_at(lease.redis, "lease")
    taken = await _standby(lease)
    assert taken < lapse, f"taken {taken - lapse} ms after the old lease lapsed"
    assert await lease.redis.get("lease") == b"new"
    await lease.redis.aclose()


async def test_a_stopped_holder_keeps_its_lease_until_it_lapses_then_stops(
    server: PrivateRedis, holder: HolderProcess
) -> None:
    """A holder that stops renewing but whose connection stays open (SIGSTOP: a frozen host, a
    partition) is waited for; resumed, it finds the new holder and stops."""
    lease = await _watching(server, holder)
    holder.signal(signal.SIGSTOP)
    lapse = await lapses_at(lease.redis, "lease")
    taken = await _standby(lease)
    assert taken >= lapse - 5, f"taken {lapse - taken} ms before the old lease lapsed"
    holder.drain()
    holder.signal(signal.SIGCONT)
    assert holder.until(lambda r: not r["held"]) == {"held": False, "holder": "new", "error": ""}
    await lease.redis.aclose()


async def test_a_holder_cut_off_with_its_connections_closed_stops_at_its_next_renewal(
    server: PrivateRedis, holder: HolderProcess
) -> None:
    """Early takeover's cost: a live holder that stalled while Redis closed its connections is
    taken from; its next renewal finds the new holder, and it stops then."""
    lease = await _watching(server, holder)
    holder.signal(signal.SIGSTOP)
    admin = _client(server)
    for conn in await admin.client_list():
        if conn["name"] == connection_name("server", "old"):
            await admin.client_kill_filter(_id=conn["id"])
    lapse = await lapses_at(admin, "lease")
    taken = await _standby(lease)
    assert taken < lapse
    holder.drain()
    holder.signal(signal.SIGCONT)
    first = holder.next()  # its first call since: no renewal, whatever its clock says
    if first["error"]:  # the closed connection: retried at once
        first = holder.next()
    assert first == {"held": False, "holder": "new", "error": ""}
    await lease.redis.aclose()
    await admin.aclose()


async def test_without_client_list_a_killed_holder_is_replaced_when_it_lapses(
    server: PrivateRedis, holder: HolderProcess
) -> None:
    """An ACL refusing CLIENT LIST: no verdicts, the lease lapses as before."""
    admin = _client(server)
    await admin.acl_setuser(
        "standby", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-client|list"]
    )
    url = server.url.replace("redis://", "redis://standby:pw@")
    lease = await _watching(server, holder, url)
    assert lease.watch.refused
    holder.signal(signal.SIGKILL)
    lapse = await lapses_at(admin, "lease")
    taken = await _standby(lease)
    assert taken >= lapse - 5
    await lease.redis.aclose()
    await admin.aclose()


async def test_after_a_restart_nobody_is_judged_until_connections_are_old_enough(
    server: PrivateRedis, holder: HolderProcess
) -> None:
    """A restarted Redis (or a new primary after a failover) has no connection of anyone yet:
    a stalled live holder still reconnecting is not taken from before its lease lapses."""
    lease = await _watching(server, holder)
    holder.signal(signal.SIGSTOP)
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)
    lapse = await lapses_at(lease.redis, "lease")
    taken = await _standby(lease)
    assert taken >= lapse - 5, f"taken {lapse - taken} ms before the old lease lapsed"
    await lease.redis.aclose()
