"""A hub server killed outright (SIGKILL) has its delivery claims taken before they lapse: the
survivor finds them stale (two renewals missed) and no Redis connection under the killed
server's name (`fnhub.holders`), so the subscription's deliveries resume well within the old
claim's TTL, read from Redis at the kill. A server stopped (SIGSTOP: a frozen host) keeps its
connections open and is waited for: its claim moves only once it lapsed.

With one subscription the survivor, below its share, asks for the claim every pass; with two,
each server holds its share, and the survivor finds the killed server's heartbeat missed two
passes and its process gone before its share grows (the hub's view of dead servers)."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import redis

from fnhub.holders import QUIET_SECONDS
from fnhub.keys import Keys

from .harness import eventually, script_publish
from .test_conformance import subscribe, topic_url
from .test_restart import HubProcess

TTL = 6.0  # wide: stale after 2 s without a renewal, lapsed after 6
#: a claim taken early leaves at least this much of the old claim's TTL unused (it is taken
#: 2 s after the last renewal, so about 4 s are left; lapsing leaves none)
EARLY_BY = 1.5
#: a stopped holder's claim, when it moved, had at most this much left (it lapsed: polling
#: every 20 ms on a busy machine; taken early it would have had 4 s left)
LAPSED_WITHIN_MS = 1500


async def _two_hubs(hub_settings, subscribers, n: int = 1):
    """Two hub servers and `n` subscriptions to one topic; the first one's callback and id."""
    settings = hub_settings.model_copy(update={"websub_owner_ttl": TTL})
    hubs = [HubProcess(settings), HubProcess(settings.model_copy(update={"port": _port()}))]
    await asyncio.gather(*(h.start() for h in hubs))
    topic = topic_url(subscribers)
    cbs = [await subscribe(hubs[0], subscribers, f"early{i}", topic) for i in range(n)]
    ids = {s["callback"].rsplit("/", 1)[1]: s["id"] for s in await hubs[0].subscriptions()}
    return settings, hubs, topic, cbs[0], ids


def _port() -> int:
    from tests.conftest import free_port

    return free_port()


async def _holder(r: redis.Redis, key: str, hubs: list[HubProcess]) -> tuple[HubProcess, bytes]:
    """The hub holding the claim, once held, and once the other has looked at its holder and
    its own connections are old enough to judge (`QUIET_SECONDS`, and a few passes)."""
    owner = await eventually(lambda: r.get(key), timeout=20)
    await asyncio.sleep(QUIET_SECONDS + 2)
    assert r.get(key) == owner  # nobody lost it meanwhile
    pid = int(owner.decode().rsplit("-", 2)[1])
    (victim,) = [h for h in hubs if h.proc is not None and h.proc.pid == pid]
    return victim, owner


async def _stop(hubs: list[HubProcess]) -> None:
    for h in hubs:
        if h.proc and h.proc.poll() is None:
            h.proc.send_signal(signal.SIGCONT)
            h.proc.terminate()
            h.proc.wait(10)
        await h.http.aclose()


@pytest.mark.parametrize("subscriptions", [1, 2])
async def test_a_killed_servers_claim_moves_and_deliveries_resume_before_it_lapses(
    hub_settings, subscribers, subscriptions
):
    settings, hubs, topic, cb, ids = await _two_hubs(hub_settings, subscribers, subscriptions)
    r = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.key_prefix)
    key = keys.websub_owner(ids["early0"])
    try:
        owners = [keys.websub_owner(sid) for sid in ids.values()]
        await eventually(lambda: len({r.get(k) for k in owners} - {None}) == subscriptions, 20)
        victim, owner = await _holder(r, key, hubs)
        victim.kill()
        killed_at = time.time()
        lapses_at = killed_at + r.pttl(key) / 1000  # nothing renews it after the kill
        assert r.get(key) == owner
        script_publish(settings, topic, ["after"])
        await eventually(lambda: r.get(key) not in (None, owner), timeout=2 * TTL)
        taken_at = time.time()
        notice = await eventually(lambda: [n for n in cb.notices if n.body == b"after"], 2 * TTL)
        resumed_at = notice[0].at
        assert taken_at < lapses_at - EARLY_BY, (taken_at - killed_at, lapses_at - killed_at)
        assert resumed_at < lapses_at - EARLY_BY, (resumed_at - killed_at, lapses_at - killed_at)
    finally:
        await _stop(hubs)
        r.close()


async def test_a_stopped_servers_claim_is_waited_for_until_it_lapses(hub_settings, subscribers):
    settings, hubs, topic, cb, ids = await _two_hubs(hub_settings, subscribers)
    r = redis.Redis.from_url(settings.redis_url)
    key = Keys(settings.key_prefix).websub_owner(ids["early0"])
    try:
        victim, owner = await _holder(r, key, hubs)
        assert victim.proc is not None
        victim.proc.send_signal(signal.SIGSTOP)
        left = r.pttl(key)
        deadline = time.monotonic() + 3 * TTL
        while r.get(key) == owner and time.monotonic() < deadline:
            left = r.pttl(key)
            await asyncio.sleep(0.02)
        assert r.get(key) != owner  # moved, once it lapsed
        assert left <= LAPSED_WITHIN_MS, left
        script_publish(settings, topic, ["after"])
        await eventually(lambda: any(n.body == b"after" for n in cb.notices), timeout=2 * TTL)
    finally:
        await _stop(hubs)
        r.close()
