"""Bounded notification storage in the Redis the task queue also uses: nothing stored for topics
without subscribers, per-topic caps (oldest dropped, counted), a global cap (503), and delivered
notifications removed. Real server, real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis as sync_redis

from fnhub.websub.policy import url_hash
from fnhub.websub.store import StorageFull

from .harness import eventually, script_publish
from .test_conformance import subscribe, topic_url
from .test_delivery import fat_publish


class Stored:
    """What the hub keeps in Redis, read straight from it."""

    def __init__(self, hub) -> None:
        self.prefix = hub.settings.key_prefix
        self.client = sync_redis.Redis.from_url(hub.settings.redis_url)

    def length(self, topic: str) -> int:
        return self.client.xlen(f"{self.prefix}:websub:topic:{url_hash(topic)}")

    def bodies(self, topic: str) -> list[bytes]:
        key = f"{self.prefix}:websub:topic:{url_hash(topic)}"
        return [fields[b"body"] for _, fields in self.client.xrange(key)]

    def total_bytes(self) -> int:
        return int(self.client.get(f"{self.prefix}:websub:stored:total") or 0)

    def topic_keys(self) -> list[bytes]:
        return list(self.client.scan_iter(match=f"{self.prefix}:websub:topic:*"))


@pytest.fixture
def stored(hub):
    s = Stored(hub)
    yield s
    s.client.close()


async def test_publishes_to_a_topic_without_subscribers_store_and_fetch_nothing(
    hub, subscribers, stored
):
    """The 31 MB/s hole: an anonymous client publishing to a topic nobody subscribes to."""
    topic = topic_url(subscribers)
    subscribers.topics[topic.rsplit("/", 1)[1]] = (b"fetched", "text/plain")
    for _ in range(100):
        r = await hub.post(**{"hub.mode": "publish", "hub.url": topic, "hub.content": "x" * 50_000})
        assert r.status_code == 202 and "without subscribers" in r.text, r.text
    r = await hub.post(**{"hub.mode": "publish", "hub.url": topic})  # would fetch the topic
    assert r.status_code == 202
    assert subscribers.topic_fetches == []
    assert stored.topic_keys() == [] and stored.total_bytes() == 0
    metrics = (await hub.api("GET", "/metrics")).json()
    assert metrics["cluster"]["published_without_subscribers"] == 101
    assert metrics["cluster"]["stored_bytes"] == 0


async def test_topic_cap_drops_the_oldest_and_counts_them(start_hub, subscribers):
    hub = await start_hub(websub_stream_max_len=5, websub_topic_max_bytes=0)
    stored = Stored(hub)
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "behind", topic)
    cb.down = True  # stays behind: nothing is delivered, everything waits in the store
    for i in range(12):
        await fat_publish(hub, topic, f"n{i}")
    assert stored.bodies(topic) == [f"n{i}".encode() for i in range(7, 12)]
    assert stored.total_bytes() == sum(len(f"n{i}") for i in range(7, 12))
    [row] = (await hub.api("GET", "/topics")).json()
    assert (row["stored"], row["dropped"], row["notifications"]) == (5, 7, 12)
    cluster = (await hub.api("GET", "/metrics")).json()["cluster"]
    assert cluster["dropped_over_cap"] == 7
    stored.client.close()


async def test_topic_byte_cap(start_hub, subscribers):
    hub = await start_hub(websub_topic_max_bytes=1_000)
    stored = Stored(hub)
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "bytes", topic)
    cb.down = True
    for i in range(10):
        await fat_publish(hub, topic, f"{i}" * 300)
    assert stored.bodies(topic) == [f"{i}".encode() * 300 for i in (7, 8, 9)]
    assert stored.total_bytes() == 900
    [row] = (await hub.api("GET", "/topics")).json()
    assert (row["stored_bytes"], row["dropped"]) == (900, 7)
    stored.client.close()


async def test_full_storage_refuses_publishes_with_503_until_delivered(start_hub, subscribers):
    hub = await start_hub(websub_storage_max_bytes=1_000)
    stored = Stored(hub)
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "full", topic)
    cb.delay = 1.0  # holds the first notification, so all of them wait in the store
    for i in range(3):
        await fat_publish(hub, topic, f"{i}" * 300)
    publish = {"hub.mode": "publish", "hub.url": topic, "hub.content": "3" * 300}
    r = await hub.post(**publish)
    assert r.status_code == 503 and "storage is full" in r.text, r.text
    assert int(r.headers["retry-after"]) > 0
    with pytest.raises(StorageFull):
        script_publish(hub.settings, topic, ["4" * 300])
    assert stored.total_bytes() == 900
    cluster = (await hub.api("GET", "/metrics")).json()["cluster"]
    assert cluster["refused_storage_full"] == 2
    await eventually(lambda: len(cb.notices) == 3, timeout=15)
    await eventually(lambda: stored.total_bytes() == 0, timeout=15)  # reclaimed once delivered
    assert (await hub.post(**publish)).status_code == 202
    await eventually(lambda: len(cb.notices) == 4)
    stored.client.close()


async def test_delivered_and_unwanted_notifications_are_reclaimed(hub, subscribers, stored):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "done", topic)
    for i in range(5):
        await fat_publish(hub, topic, f"n{i}")
    await eventually(lambda: len(cb.notices) == 5)
    nobody = topic_url(subscribers)  # scripts store without asking who subscribes
    script_publish(hub.settings, nobody, ["unwanted"])
    assert stored.length(nobody) == 1 and stored.length(topic) > 0
    await eventually(lambda: stored.total_bytes() == 0, timeout=15)
    assert stored.length(topic) == 0 and stored.length(nobody) == 0
    [row] = (await hub.api("GET", "/topics")).json()
    assert row["notifications"] == 5  # the counters remember what was published
    await fat_publish(hub, topic, "after")  # positions continue: a new one is delivered
    await eventually(lambda: cb.bodies()[-1:] == [b"after"])


async def test_a_behind_subscriber_keeps_what_it_has_not_received(start_hub, subscribers):
    hub = await start_hub(websub_delivery_window=1)  # one at a time: it stays behind for 4 s
    stored = Stored(hub)
    topic = topic_url(subscribers)
    fast = await subscribe(hub, subscribers, "fast", topic)
    slow = await subscribe(hub, subscribers, "slow", topic)
    slow.delay = 1.0
    for i in range(4):
        await fat_publish(hub, topic, f"n{i}")
    await eventually(lambda: len(fast.notices) == 4)
    await asyncio.sleep(6)  # a reclaim pass ran meanwhile; the slow one has had about 4 of 4
    await eventually(lambda: len(slow.notices) == 4, timeout=10)
    assert slow.bodies() == [f"n{i}".encode() for i in range(4)]
    await eventually(lambda: stored.total_bytes() == 0, timeout=15)
    stored.client.close()


async def test_a_reclaim_that_frees_nothing_is_no_error(settings):
    """Reclaiming up to a position before a topic's first entry frees 0 bytes: Lua's -0 is sent
    to Redis as "-0", which HINCRBY refuses, and the error failed the whole reclaim pass."""
    from fnhub.keys import Keys
    from fnhub.redis_client import async_redis
    from fnhub.websub.store import RedisStore

    client = async_redis(settings)
    try:
        store = RedisStore(client, Keys(settings.key_prefix), settings)
        first = await store.append("t1", "text/plain", b"kept")
        await store.append("t2", "text/plain", b"gone")
        before = "0-1"  # older than anything stored: nothing to free in t1
        assert store.order(before) < store.order(first)
        assert await store.reclaim({"t1": before, "t2": await store.end("t2")}) == 1
        assert [n.body for n in await store.read("t1", "0-0", 10)] == [b"kept"]
        assert await client.hget(f"{settings.key_prefix}:websub:stored", "t1") == b"4"
    finally:
        await client.aclose()
