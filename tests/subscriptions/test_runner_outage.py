"""While fnhub's own Redis is unreachable, a subscription's batch is neither lost nor failed:
the runner shows the error and retries, and its messages stay unsettled (so unacked)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aredis
from tests.conftest import free_port

from fnhub.calling.caller import Caller
from fnhub.config import Settings
from fnhub.connections import ConnectorConfig
from fnhub.connectors import Message
from fnhub.keys import Keys
from fnhub.server.context import ServerContext
from fnhub.store.db import Database
from fnhub.subscriptions.runner import Runner
from fnhub.subscriptions.spec import parse_spec


async def test_unknown_function_while_redis_is_down_is_retried_not_failed(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings = Settings(
        project_dir=tmp_path,
        data_dir=tmp_path / ".fnhub",
        redis_url=url,
        db_url=f"sqlite:///{tmp_path / 'f.db'}",
        key_prefix="outage",
    )
    client = aredis.Redis.from_url(url, socket_connect_timeout=0.2)
    caller = Caller(settings, client, Keys("outage"), "outage-test")  # never refreshed
    ctx = ServerContext(
        settings=settings,
        redis=client,
        db=Database(settings.resolved_db_url()),
        keys=Keys("outage"),
        server_id="outage-test",
        caller=caller,
    )
    spec = parse_spec(
        {"name": "s", "connector": "c", "topics": ["t"], "function": "handlers.handle"}
    )
    connector = ConnectorConfig(name="c", type="redis", settings={"url": url})
    runner = Runner(spec, connector, {"c": connector}, ctx, caller, node="n1")
    settled: list[tuple[int, bool]] = []
    batch = asyncio.create_task(
        runner.handle_batch(
            [Message(topic="t", payload=b"hello")], lambda i, ok: settled.append((i, ok))
        )
    )
    await asyncio.sleep(1.0)
    assert not batch.done() and settled == []  # still retrying: not acked, not a failure
    assert "cannot refresh" in (runner.stats.last_error or "")
    assert runner.stats.by_outcome == {}
    batch.cancel()
    await asyncio.gather(batch, return_exceptions=True)
    await ctx.redis.aclose()
    ctx.db.dispose()
