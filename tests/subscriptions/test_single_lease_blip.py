"""A `single` subscription's holder keeps its lease and its source through a blip of fnhub's
Redis shorter than the lease: no unsubscribe, no gap (a Kafka group would rebalance for
seconds). Its broker here is the machine's Redis (pub/sub, which keeps nothing for a source
that is away), fnhub's Redis a private redis-server that the test restarts and freezes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aredis
from tests.conftest import REDIS_URL, wait_for
from tests.private_redis import PrivateRedis
from tests.subscriptions.holder_context import holder_context

from fnhub.connections import ConnectorConfig
from fnhub.subscriptions.runner import LEASE_SECONDS, Runner
from fnhub.subscriptions.spec import parse_spec


@pytest.fixture
async def fnhub_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    with PrivateRedis(tmp_path / "redis") as server:
        yield server


async def _blip_keeps_the_subscription(tmp_path: Path, fnhub_redis: PrivateRedis, blip) -> None:
    ctx = holder_context(tmp_path, fnhub_redis.url, "blip")
    channel = f"blip-{uuid.uuid4().hex[:8]}"
    spec = parse_spec(
        {
            "name": "relay",
            "connector": "broker",
            "topics": [f"{channel}-in"],
            "publish": {"topic": f"{channel}-out"},
        }
    )
    broker = ConnectorConfig(name="broker", type="redis", settings={"url": REDIS_URL})
    runner = Runner(spec, broker, {"broker": broker}, ctx, ctx.caller, node="n1")
    machine = aredis.Redis.from_url(REDIS_URL)
    out = machine.pubsub()
    await out.subscribe(f"{channel}-out")
    running = asyncio.create_task(runner.run())
    try:
        await asyncio.to_thread(
            wait_for, lambda: runner.source and runner.source.status.state == "connected"
        )
        source = runner.source
        sent = 0

        async def publish_meanwhile() -> None:
            nonlocal sent
            while True:  # PUBLISH answers how many subscribers got it: 0 is a gap
                assert await machine.publish(f"{channel}-in", str(sent)) == 1, sent
                sent += 1
                await asyncio.sleep(0.05)

        publisher = asyncio.create_task(publish_meanwhile())
        await asyncio.sleep(0.3)
        await blip()
        await asyncio.sleep(LEASE_SECONDS)  # past when the lease would have lapsed
        assert not publisher.done(), publisher.exception()
        publisher.cancel()
        assert runner.source is source  # never stopped, never replaced
        assert runner.holder == "holder"
        assert await ctx.redis.get(ctx.keys.subscription_lease("relay")) == b"holder"
        received: list[int] = []
        deadline = asyncio.get_running_loop().time() + 10
        while len(received) < sent and asyncio.get_running_loop().time() < deadline:
            # (None also for the subscription's own confirmation, ignored)
            msg = await out.get_message(ignore_subscribe_messages=True, timeout=1)
            if msg is not None:
                received.append(int(msg["data"]))
        assert received == list(range(sent))  # every message went through, in order
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await out.aclose()
        await machine.aclose()
        await ctx.redis.aclose()
        ctx.db.dispose()


async def test_restart_of_fnhub_redis_keeps_the_subscription(tmp_path, fnhub_redis) -> None:
    async def restart() -> None:
        await asyncio.to_thread(fnhub_redis.stop)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(fnhub_redis.start)

    await _blip_keeps_the_subscription(tmp_path, fnhub_redis, restart)


async def test_freeze_of_fnhub_redis_keeps_the_subscription(tmp_path, fnhub_redis) -> None:
    await _blip_keeps_the_subscription(
        tmp_path, fnhub_redis, lambda: asyncio.to_thread(fnhub_redis.freeze, 1.5)
    )
