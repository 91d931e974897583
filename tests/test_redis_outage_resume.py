"""After fnhub's Redis was away for seconds (a restart, a Sentinel failover), the data path works
again within about a second of its return: the loops that retry it pause at most
`backoff.REDIS_RETRY_CAP_SECONDS`, so none is still sleeping off a pause that grew during the
outage. Each test stops a Redis server of its own and starts it again on the same port (keys
saved at the stop come back, as after a failover)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tests.conftest import free_port, wait_for
from tests.private_redis import PrivateRedis
from tests.test_startup_wait import Roles

from fnhub.bootstrap import open_services
from fnhub.calling.caller import Caller
from fnhub.calling.queue_client import QueueClient
from fnhub.connections import ConnectorConfig
from fnhub.connectors import Message
from fnhub.keys import Keys
from fnhub.queue import bundle_envelopes
from fnhub.redis_client import async_redis
from fnhub.server.context import ServerContext
from fnhub.store.db import Database
from fnhub.subscriptions.runner import Runner
from fnhub.subscriptions.spec import parse_spec

SCRIPT = """
import os
import time

import fnhub


@fnhub.api("mark")
def mark(path, seconds=0.0):
    with open(path, "a") as f:
        f.write(f"{os.getpid()} {time.time()}\\n")
    time.sleep(seconds)


@fnhub.api("on_message")
def on_message(topic, message):
    return message
"""
OUTAGE_SECONDS = 6.0
#: the bound: the retry cap (1 s) plus what a loaded test machine adds
BACK_WITHIN_SECONDS = 1.5


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    with PrivateRedis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def roles(tmp_path: Path, own_redis: PrivateRedis) -> Iterator[Roles]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")},
        "FNHUB_KEY_PREFIX": f"resume-{uuid.uuid4().hex[:10]}",
        "FNHUB_DATA_DIR": str(tmp_path / ".fnhub"),
        "FNHUB_DB_URL": f"sqlite:///{tmp_path / 'fnhub.db'}",
        "FNHUB_REDIS_URL": own_redis.url,
        "FNHUB_PROCESSES": "2",
        "FNHUB_PREFETCH": "1",  # a child takes one task at a time: each child shows itself
        "FNHUB_PORT": str(free_port()),
        "FNHUB_ACCESS_LOG": "false",
    }
    r = Roles(tmp_path, env)
    services = open_services(r.settings())
    services.scripts.publish({"demo": SCRIPT})
    services.close()
    yield r
    r.stop()


def _marks(path: Path) -> list[tuple[int, float]]:
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # (the last may be half written)
    return [(int(pid), float(at)) for pid, at in (line.split() for line in lines)]


def _run_marks(roles: Roles, marks: Path, seconds: float) -> list[tuple[int, float]]:
    """Submit two tasks that each hold their child for `seconds`; their (pid, start), once
    both started (at once only if both children read the queue)."""
    before = len(_marks(marks))
    client = QueueClient(roles.settings())
    try:
        for _ in range(2):
            client.submit("demo.mark", {"path": str(marks), "seconds": seconds})
    finally:
        client.close()
    return wait_for(lambda: len(_marks(marks)) >= before + 2 and _marks(marks)[before:], 30)


def _outage(server: PrivateRedis) -> float:
    """Redis away for OUTAGE_SECONDS; when (epoch) it answered again."""
    server.stop()
    time.sleep(OUTAGE_SECONDS)
    server.start()
    return time.time()


@pytest.mark.timeout(120)
def test_both_worker_children_read_the_queue_within_a_second_of_redis_coming_back(
    roles: Roles, own_redis: PrivateRedis, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    roles.start("worker", "-p", str(roles.folder))
    warm = _run_marks(roles, marks, 1.0)  # the two children read: each took one
    assert len({pid for pid, _ in warm}) == 2, warm
    time.sleep(1.5)  # both finished: the outage finds them reading the queue
    back = _outage(own_redis)
    started = _run_marks(roles, marks, 3.0)
    lags = [round(at - back, 2) for _, at in started]
    # one child still pausing: the other takes the second task only after the first (3 s)
    assert max(lags) < BACK_WITHIN_SECONDS, (lags, roles.log("worker")[-3000:])
    assert len({pid for pid, _ in started}) == 2, started


@pytest.mark.timeout(120)
def test_worker_chores_say_recovered_once_after_an_outage(
    roles: Roles, own_redis: PrivateRedis, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    roles.start("worker", "-p", str(roles.folder))
    _run_marks(roles, marks, 0.0)
    own_redis.stop()
    time.sleep(3.0)
    during = roles.log("worker")
    own_redis.start()
    _run_marks(roles, marks, 0.0)
    time.sleep(1.0)  # a heartbeat's time: its chores ran again
    recovered = "worker chores cannot reach Redis: recovered"
    assert during.count(recovered) == 0, during[-3000:]
    assert roles.log("worker").count(recovered) == 1, roles.log("worker")[-3000:]


def _queued(client: redis.Redis, stream: str) -> tuple[int, float]:
    """The tasks in a queue stream (a bundle entry holds several), and when (epoch) Redis
    took its last entry (its id's milliseconds)."""
    entries = client.xrange(stream)
    tasks = sum(len(bundle_envelopes(f[b"b"])) if b"b" in f else 1 for _, f in entries)
    last = max((int(entry_id.split(b"-")[0]) for entry_id, _ in entries), default=0)
    return tasks, last / 1000


@pytest.mark.timeout(120)
async def test_subscription_batches_that_failed_to_enqueue_go_out_within_a_second_of_redis(
    roles: Roles, own_redis: PrivateRedis, tmp_path: Path
) -> None:
    """Batches that began failing at different times of the outage (as a window of messages
    does) are all enqueued within a second of its end. The worker only shows itself (the
    caller, never refreshed again, keeps it as listening): the tasks stay in the queue, where
    their entries' ids say when Redis took them."""
    settings = roles.settings()
    keys = Keys(settings.key_prefix)
    roles.start("worker", "-p", str(roles.folder))
    client = async_redis(settings)
    caller = Caller(settings, client, keys, "resume-test")
    for _ in range(300):
        await caller.refresh()
        if caller.queue_workers.get("sub"):
            break
        await asyncio.sleep(0.1)
    assert caller.queue_workers.get("sub")
    await asyncio.to_thread(roles.stop)
    db = Database(settings.resolved_db_url())
    ctx = ServerContext(settings, client, db, keys, "resume-test", caller)
    spec = parse_spec(
        {"name": "s", "connector": "c", "topics": ["t"], "function": "demo.on_message"}
    )
    connector = ConnectorConfig(name="c", type="redis", settings={"url": own_redis.url})
    runner = Runner(spec, connector, {"c": connector}, ctx, caller, node="n1")
    batches: list[asyncio.Task[None]] = []
    check = redis.Redis.from_url(own_redis.url)
    try:
        await asyncio.to_thread(own_redis.stop)
        for i in range(4):  # one a second, from the outage's start
            msg = Message(topic="t", payload=f"m{i}".encode())
            batches.append(asyncio.create_task(runner.handle_batch([msg], lambda i, ok: None)))
            await asyncio.sleep(1.0)
        await asyncio.sleep(OUTAGE_SECONDS - 4.0)
        await asyncio.to_thread(own_redis.start)
        back = time.time()
        assert "enqueue failed" in (runner.stats.last_error or "")
        stream = keys.queue("sub")
        for _ in range(200):
            tasks, last = await asyncio.to_thread(_queued, check, stream)
            if tasks >= 4:
                break
            await asyncio.sleep(0.05)
        assert tasks == 4
        assert last - back < BACK_WITHIN_SECONDS, round(last - back, 2)
        assert not any(batch.done() for batch in batches)  # waiting for their results
    finally:
        for batch in batches:
            batch.cancel()
        await asyncio.gather(*batches, return_exceptions=True)
        check.close()
        await client.aclose()
        ctx.db.dispose()
