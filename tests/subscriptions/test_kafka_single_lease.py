"""A `single` Kafka subscription's source commits only while the runner's lease is ours: the
runner hands it the lease's clock (`CommitsPositions.lease_held`), which turns false when the
lease lapses (fnhub's Redis frozen past LEASE_SECONDS), before the runner has stopped it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import free_port, wait_for
from tests.connectors.conftest import Broker, tansu_argv
from tests.private_redis import PrivateRedis
from tests.subscriptions.holder_context import holder_context

from fnhub.connections import ConnectorConfig
from fnhub.connectors.base import CommitsPositions
from fnhub.subscriptions.runner import LEASE_SECONDS, Runner
from fnhub.subscriptions.spec import parse_spec


async def test_the_source_commits_by_the_lease_s_clock(tmp_path: Path) -> None:
    port = free_port()
    tansu = Broker("tansu", lambda: tansu_argv(port), port, tmp_path).start()
    with PrivateRedis(tmp_path / "redis") as fnhub_redis:
        ctx = holder_context(tmp_path, fnhub_redis.url, "kl")
        client = ctx.redis
        spec = parse_spec(
            {"name": "relay", "connector": "kf", "topics": ["in"], "publish": {"topic": "out"}}
        )
        kafka = ConnectorConfig(
            name="kf", type="kafka", settings={"bootstrap_servers": f"127.0.0.1:{port}"}
        )
        runner = Runner(spec, kafka, {"kf": kafka}, ctx, ctx.caller, node="n1")
        running = asyncio.create_task(runner.run())
        try:
            await asyncio.to_thread(wait_for, lambda: runner.source is not None)
            source = runner.source
            assert isinstance(source, CommitsPositions) and source.lease_held is not None
            assert source.lease_held()
            await asyncio.to_thread(fnhub_redis.freeze, LEASE_SECONDS + 0.5)
            assert not source.lease_held()  # lapsed by our clock: nothing more is committed
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await client.aclose()
            ctx.db.dispose()
            tansu.stop()
