"""Async submissions (`Caller.submit`, what `POST /functions/{ref}/tasks` does) made together
go to Redis together: a burst costs a handful of transactions, not one per task, and a failure
fails only the submissions whose queue it touched (a private redis-server, so that its command
counts are this test's alone)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis
from tests.private_redis import PrivateRedis

from fnhub.calling.caller import Caller
from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.queue import bundle_envelopes
from fnhub.tasks import Task, decode_result, decode_task


@pytest.fixture
def private(tmp_path: Path) -> Iterator[PrivateRedis]:
    with PrivateRedis(tmp_path / "redis") as server:
        yield server


def _caller(tmp_path: Path, url: str) -> tuple[Caller, aredis.Redis, Keys]:
    settings = Settings(
        project_dir=tmp_path, data_dir=tmp_path / ".fnhub", redis_url=url, key_prefix="sb"
    )
    client = aredis.Redis.from_url(url)
    keys = Keys(settings.key_prefix)
    caller = Caller(settings, client, keys, "server-1")
    caller.queue_workers = {"a": 1, "b": 1}  # as `refresh` would read from live workers
    return caller, client, keys


def _task(queue: str, n: int, keys: Keys) -> Task:
    task = Task(function="m.f", kwargs={"n": n}, queue=queue)
    task.status_key = keys.task_status(task.id)
    return task


def _calls(sync: redis.Redis, command: str) -> int:
    stats = sync.info("commandstats").get(f"cmdstat_{command}")
    return int(stats["calls"]) if stats else 0


def _queued(sync: redis.Redis, stream: str) -> list[int]:
    """The `n` of every task on `stream`, bundles unpacked."""
    out = []
    for _id, fields in sync.xrange(stream):
        envelopes = [fields[b"e"]] if b"e" in fields else bundle_envelopes(fields[b"b"])
        out += [decode_task(bytes(e)).kwargs["n"] for e in envelopes]
    return out


def test_a_burst_of_submissions_goes_out_in_one_transaction(
    tmp_path: Path, private: PrivateRedis
) -> None:
    caller, client, keys = _caller(tmp_path, private.url)
    sync = redis.Redis.from_url(private.url)
    tasks = [_task("a", n, keys) for n in range(100)]

    async def burst() -> None:
        await asyncio.gather(*(caller.submit(t) for t in tasks))
        await client.aclose()

    before = _calls(sync, "multi")
    asyncio.run(burst())
    assert _calls(sync, "multi") - before == 1  # one per task before batching
    assert sorted(_queued(sync, keys.queue("a"))) == list(range(100))
    for task in tasks:
        raw = sync.get(task.status_key or "")
        assert raw is not None and decode_result(raw).status == "queued"
        assert sync.ttl(task.status_key or "") > 0


def test_a_broken_queue_fails_its_own_submissions_only(
    tmp_path: Path, private: PrivateRedis
) -> None:
    caller, client, keys = _caller(tmp_path, private.url)
    sync = redis.Redis.from_url(private.url)
    sync.set(keys.queue("a"), "clobbered by hand")  # XADD to it: WRONGTYPE
    tasks = [_task("a" if n % 2 else "b", n, keys) for n in range(40)]
    later = [_task("b", 100 + n, keys) for n in range(5)]

    async def burst() -> list[BaseException | None]:
        eta = time.time() + 60
        answers = await asyncio.gather(
            *(caller.submit(t) for t in tasks),
            *(caller.submit(t, eta=eta) for t in later),
            return_exceptions=True,
        )
        await client.aclose()
        return answers

    answers = asyncio.run(burst())
    for task, answer in zip(tasks, answers, strict=False):
        if task.queue == "a":
            assert isinstance(answer, redis.ResponseError) and "WRONGTYPE" in str(answer)
        else:
            assert answer is None
    assert answers[len(tasks) :] == [None] * len(later)
    assert sorted(_queued(sync, keys.queue("b"))) == list(range(0, 40, 2))
    assert sync.zcard(keys.delayed) == len(later)  # the delayed ones wait for their eta


def test_a_submission_cancelled_before_it_is_sent_is_not_sent(
    tmp_path: Path, private: PrivateRedis
) -> None:
    caller, client, keys = _caller(tmp_path, private.url)
    sync = redis.Redis.from_url(private.url)
    kept, dropped = _task("a", 1, keys), _task("a", 2, keys)

    async def one_cancelled() -> None:
        gone = asyncio.ensure_future(caller.submit(dropped))
        sent = asyncio.ensure_future(caller.submit(kept))
        await asyncio.sleep(0)  # both wait for the send, which runs on the next iteration
        gone.cancel()  # a client that went away before its request was sent
        await sent
        await client.aclose()

    asyncio.run(one_cancelled())
    assert _queued(sync, keys.queue("a")) == [1]
    assert sync.get(dropped.status_key or "") is None
