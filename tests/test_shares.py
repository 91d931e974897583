"""`fnhub.shares`: items spread evenly over the live members, each item held by one member at a
time, a stopped member's items taken by the others once its leases lapse (real redis-server)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aredis
from tests.lease_holder import HolderProcess, lapses_at, redis_now_ms
from tests.private_redis import PrivateRedis, SwallowingRedis, stops_when_cancelled_mid_call

from fnhub.holders import QUIET_SECONDS, connection_name, name_connections
from fnhub.shares import Shares, divide

TTL = 1.0
ITEMS = [f"ev:{p}" for p in range(8)]


def test_divide_spreads_evenly_and_moves_little():
    for n in range(1, 6):
        members = [f"m{i}" for i in range(n)]
        counts = Counter(divide(ITEMS, members).values())
        assert sum(counts.values()) == len(ITEMS)
        assert max(counts.values()) - min(counts.get(m, 0) for m in members) <= 1, counts
    two = divide(ITEMS, ["a", "b"])
    three = divide(ITEMS, ["a", "b", "c"])
    assert divide(ITEMS, ["b", "a"]) == two  # the same view gives the same division
    # a member joining takes its share, mostly from the others, not a reshuffle of all
    moved = [i for i in ITEMS if three[i] != "c" and three[i] != two[i]]
    assert len(moved) <= 2, (two, three)
    assert divide(ITEMS, []) == {}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    with PrivateRedis(tmp_path / "redis") as s:
        yield s


@pytest.fixture
async def redis_client(server: PrivateRedis) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(server.url, socket_connect_timeout=0.5)
    yield client
    await client.aclose()


class Member:
    """Ticks as a source would: asks for its share, gives up what left it."""

    def __init__(self, client: aredis.Redis, name: str, ttl: float = TTL) -> None:
        self.shares = Shares(client, "t:members", "t:item:", name, ttl)
        self.task: asyncio.Task[None] | None = None

    async def step(self) -> None:
        s = self.shares
        wanted = s.wanted(ITEMS)
        gone = s.held() - wanted
        if gone:
            await s.release(gone)
        await s.tick(wanted)

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.shares.renew_in())

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:  # a kill: no release, the leases lapse
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def _settle(members: list[Member], check) -> None:
    """Wait until every item is held by exactly the members `check` expects, asserting at
    every sample that no item is held by two members at once."""
    deadline = time.monotonic() + 10
    while True:
        held = Counter(item for m in members for item in m.shares.held())
        assert all(n == 1 for n in held.values()), held
        if check():
            return
        assert time.monotonic() < deadline, [sorted(m.shares.held()) for m in members]
        await asyncio.sleep(0.02)


async def test_members_split_the_items_and_a_survivor_takes_all(redis_client):
    a, b = Member(redis_client, "a"), Member(redis_client, "b")
    a.start()
    await _settle([a], lambda: a.shares.held() == set(ITEMS))
    b.start()  # joins: a hands half over, keeping the rest
    await _settle([a, b], lambda: len(a.shares.held()) == len(b.shares.held()) == len(ITEMS) // 2)
    split = a.shares.held()
    await b.stop()
    stopped = time.monotonic()
    await _settle([a, b], lambda: a.shares.held() == set(ITEMS))
    took = time.monotonic() - stopped
    assert TTL * 0.5 < took < TTL * 3, took  # once b's leases lapsed, not before
    assert split <= a.shares.held()  # it kept reading its own meanwhile
    await a.stop()


async def test_leave_frees_the_items_at_once(redis_client):
    a, b = Member(redis_client, "a"), Member(redis_client, "b")
    a.start()
    b.start()
    await _settle([a, b], lambda: len(a.shares.held()) == len(b.shares.held()) == 4)
    await b.stop()
    await b.shares.leave()
    left = time.monotonic()
    await _settle([a, b], lambda: a.shares.held() == set(ITEMS))
    assert time.monotonic() - left < TTL * 0.5
    await a.stop()


async def test_a_freeze_shorter_than_the_leases_keeps_every_item(server, redis_client):
    """A frozen Redis does not refuse: calls hang, and are given up before an item could
    lapse; the items stay held throughout, and are renewed once Redis answers again."""
    a = Member(redis_client, "a", ttl=3.0)
    a.start()
    await _settle([a], lambda: a.shares.held() == set(ITEMS))
    freezer = asyncio.create_task(asyncio.to_thread(server.freeze, 1.5))
    low = len(ITEMS)
    until = time.monotonic() + 3.5
    while time.monotonic() < until:
        low = min(low, len(a.shares.held()))
        await asyncio.sleep(0.02)
    await freezer
    assert low == len(ITEMS)
    assert a.shares.error is None  # answering again
    await a.stop()


async def test_a_cancellation_its_redis_call_swallowed_still_stops_the_member(
    server: PrivateRedis,
) -> None:
    """A member cancelled while its tick hangs, the call returning the answer instead of
    raising: `tick` raises the cancellation, so the member stops (CI: it ticked on)."""
    client = SwallowingRedis.from_url(server.url, socket_connect_timeout=0.5)
    a = Member(client, "a", ttl=3.0)
    await a.step()  # a member
    await a.step()  # holding items: a call hanging through the freeze is not given up
    assert a.shares.held() == set(ITEMS)
    assert await stops_when_cancelled_mid_call(server, client, a.step), (
        "the member ticked on, cancelled"
    )
    await client.aclose()


@contextlib.asynccontextmanager
async def _member_and_process(
    server: PrivateRedis,
) -> AsyncIterator[tuple[aredis.Redis, Member, HolderProcess, list[str]]]:
    """Member a (3 s leases, its connection named) here and member b in a process of its own,
    each holding half the items; a's connection old enough to judge b (`fnhub.holders`).
    Yields a's client, a, b's process and b's items."""
    client = aredis.Redis.from_url(server.url, socket_connect_timeout=0.5)
    await name_connections(client, connection_name("server", "a"))
    a = Member(client, "a/1", 3.0)
    a.start()
    await _settle([a], lambda: a.shares.held() == set(ITEMS))
    other = HolderProcess("shares", server.url, "t:", "b/1", "3.0", *ITEMS)
    try:
        other.until(lambda r: len(r["held"]) == len(ITEMS) // 2, timeout=20)
        await asyncio.sleep(QUIET_SECONDS)
        theirs = sorted(set(ITEMS) - a.shares.held())
        assert len(theirs) == len(ITEMS) // 2
        yield client, a, other, theirs
    finally:
        other.close()
        await a.stop()
        await client.aclose()


async def test_a_killed_members_items_are_taken_before_its_leases_lapse(
    server: PrivateRedis,
) -> None:
    """kill -9 a member process: two ticks missed and no connection open under its name, the
    survivor drops its entry and takes its items before their leases lapse (`fnhub.holders`);
    it waited for the lapse before."""
    async with _member_and_process(server) as (client, a, other, theirs):
        other.signal(signal.SIGKILL)
        lapse = await lapses_at(client, *(f"t:item:{item}" for item in theirs))
        await _settle([a], lambda: a.shares.held() == set(ITEMS))
        taken = await redis_now_ms(client)
        assert taken < lapse, f"taken {taken - lapse} ms after b's leases lapsed"
        assert a.shares.members == ["a/1"]


async def test_a_stopped_members_items_wait_for_their_leases_to_lapse(
    server: PrivateRedis,
) -> None:
    """A member that stops ticking with its connection open (SIGSTOP: frozen, cut off) keeps
    its items until they lapse."""
    async with _member_and_process(server) as (client, a, other, theirs):
        other.signal(signal.SIGSTOP)
        lapse = await lapses_at(client, *(f"t:item:{item}" for item in theirs))
        await _settle([a], lambda: a.shares.held() == set(ITEMS))
        taken = await redis_now_ms(client)
        assert taken >= lapse - 5, f"taken {lapse - taken} ms before b's leases lapsed"
