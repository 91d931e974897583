"""The subscription runner end to end on the in-memory connector: a real source (window, ack
after done, redelivery), the machine's Redis and a real worker, no external broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from fnhub.calling.caller import Caller
from fnhub.connections import ConnectorConfig
from fnhub.connectors import memory
from fnhub.keys import Keys
from fnhub.redis_client import async_redis
from fnhub.server.context import ServerContext
from fnhub.store.db import Database
from fnhub.subscriptions.runner import Runner
from fnhub.subscriptions.spec import parse_spec

SCRIPT = """
import time

import fnhub

@fnhub.api("double")
def double(topic, message):
    return {"twice": message * 2}


@fnhub.api("take a while", timeout=60)
def slow(topic, message):
    time.sleep(30)
"""


@pytest.fixture
async def ctx(settings, publish, start_worker) -> AsyncIterator[ServerContext]:  # type: ignore[no-untyped-def]
    """A server context around a started caller, a worker on `sub` and the machine's Redis."""
    publish({"handlers": SCRIPT})
    start_worker(queues=["sub"], processes=2)
    client, keys = async_redis(settings), Keys(settings.key_prefix)
    caller = Caller(settings, client, keys, "memory-test")
    db = Database(settings.resolved_db_url())
    await caller.start()
    yield ServerContext(settings, client, db, keys, "memory-test", caller)
    await caller.stop()
    await client.aclose()
    db.dispose()


async def _until(predicate, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_function_runs_once_per_message_and_its_output_is_published(
    ctx: ServerContext,
) -> None:
    name = f"mem-{uuid.uuid4().hex[:8]}"
    broker = memory.broker(name)
    connector = ConnectorConfig(name="m", type="memory", settings={"broker": name})
    spec = parse_spec(
        {
            "name": "doubler",
            "connector": "m",
            "topics": ["in"],
            "function": "handlers.double",
            "mode": "multiple",
            "window": 20,
            "publish": {"topic": "out"},
        }
    )
    watcher = asyncio.Event()
    broker.subscribe("watch", ["out"], watcher)  # a durable group on the output topic
    runner = Runner(spec, connector, {"m": connector}, ctx, ctx.caller, node="n1")
    task = asyncio.create_task(runner.run())
    await _until(lambda: runner.source is not None and runner.source.status.state == "connected")
    n = 300
    for i in range(n):
        broker.publish("in", f"m{i}".encode())
    await _until(lambda: runner.stats.by_outcome.get("success", 0) == n)
    assert runner.source is not None
    status = runner.source.status
    assert status.max_in_flight <= 20  # the window held
    await _until(lambda: status.acked == n)
    assert broker.pending("fnhub-doubler") == (0, 0)  # every message acked, none left
    outputs = broker.take("watch", 10 * n)
    assert sorted(e.payload for e in outputs) == sorted(
        f'{{"twice":"m{i}m{i}"}}'.encode() for i in range(n)
    )
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_messages_in_flight_at_stop_are_redelivered(ctx: ServerContext) -> None:
    """Nothing settled when the source stops stays unacked and is read again, marked."""
    name = f"mem-{uuid.uuid4().hex[:8]}"
    broker = memory.broker(name)
    connector = ConnectorConfig(name="m", type="memory", settings={"broker": name})
    spec = parse_spec(
        {
            "name": "slow",
            "connector": "m",
            "topics": ["in"],
            "function": "handlers.slow",
            "mode": "multiple",
            "window": 5,
            "options": {"drain_timeout": 0.2},
        }
    )
    runner = Runner(spec, connector, {"m": connector}, ctx, ctx.caller, node="n1")
    task = asyncio.create_task(runner.run())
    await _until(lambda: runner.source is not None and runner.source.status.state == "connected")
    for i in range(8):
        broker.publish("in", f"m{i}".encode())
    await _until(lambda: broker.pending("fnhub-slow") == (3, 5))  # a full window in flight
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert broker.pending("fnhub-slow") == (8, 0)
    again = broker.take("fnhub-slow", 8)
    assert [e.payload for e in again] == [f"m{i}".encode() for i in range(8)]
    assert all(e.redelivered for e in again[:5]) and not any(e.redelivered for e in again[5:])
