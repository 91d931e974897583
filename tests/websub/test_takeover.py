"""A hub server killed (SIGKILL) while it delivers: the survivor takes its subscriptions over as
soon as their claims lapse (`websub_owner_ttl`), not a scheduling pass or a heartbeat timeout
later, and nothing is lost."""

from __future__ import annotations

import asyncio
import time

import redis
from tests.conftest import free_port

from fnhub.keys import Keys

from .harness import eventually, script_publish
from .test_conformance import subscribe, topic_url
from .test_restart import HubProcess

SUBSCRIPTIONS = 6
TTL = 2.0
#: from the kill to the first delivery of a notification published after it, per subscription
#: of the killed server: its claim lapses within TTL; what the survivor may add to that
TAKEOVER_SLACK = 0.7


async def test_survivor_takes_over_when_the_claims_lapse(hub_settings, subscribers):
    settings = hub_settings.model_copy(update={"websub_owner_ttl": TTL})
    keys = Keys(settings.key_prefix)
    hubs = [HubProcess(settings), HubProcess(settings.model_copy(update={"port": free_port()}))]
    r = redis.Redis.from_url(settings.redis_url)
    try:
        await asyncio.gather(*(h.start() for h in hubs))
        topic = topic_url(subscribers)
        cbs = [await subscribe(hubs[0], subscribers, f"s{i}", topic) for i in range(SUBSCRIPTIONS)]
        ids = {s["callback"].rsplit("/", 1)[1]: s["id"] for s in await hubs[0].subscriptions()}

        def owners() -> dict[str, bytes | None]:
            return {name: r.get(keys.websub_owner(sid)) for name, sid in ids.items()}

        def shared() -> bool:  # each server delivers its fair share
            held = [o for o in owners().values() if o is not None]
            return len(held) == SUBSCRIPTIONS and len(set(held)) == 2

        await eventually(shared, timeout=20)
        n = 0

        async def publish(seconds: float) -> None:
            nonlocal n
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                script_publish(settings, topic, [f"m{n}"])
                n += 1
                await asyncio.sleep(0.05)

        await publish(1.0)  # mid-delivery: every subscription is receiving
        victim = hubs[0]
        lost = [name for name, o in owners().items() if _server_pid(o) == victim.proc.pid]
        killed_at = time.time()
        victim.kill()
        first_after = n
        await publish(TTL + 3.0)
        total = n
        for cb in cbs:  # nothing lost: the survivor resumes at each cursor
            await eventually(lambda cb=cb: len({x.body for x in cb.notices}) == total, timeout=15)
        resumed = {
            name: min(x.at for x in subscribers.cb(name).notices if int(x.body[1:]) >= first_after)
            - killed_at
            for name in lost
        }
        assert lost and max(resumed.values()) < TTL + TAKEOVER_SLACK, resumed
    finally:
        for h in hubs:
            if h.proc and h.proc.poll() is None:
                h.proc.terminate()
                h.proc.wait(10)
            await h.http.aclose()
        r.close()


def _server_pid(server_id: bytes | None) -> int | None:
    """The process of a hub server id (`<host>-<pid>-<random>`)."""
    return int(server_id.decode().rsplit("-", 2)[1]) if server_id else None
