"""Fixtures for the cron tests: the machine's Redis under a unique key prefix, a fresh SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from fnhub.bootstrap import Services, open_services
from fnhub.calling.queue_client import QueueClient
from fnhub.config import Settings
from fnhub.cron.beat import Beat
from fnhub.cron.jobs import CronJobSpec, JobStore, check
from fnhub.redis_client import async_redis
from fnhub.revisions import bump
from fnhub.tasks import Task, decode_task

REDIS_URL = "redis://127.0.0.1:6379/0"

SCRIPT = """
import time
import fnhub


@fnhub.api()
def tick(n: int = 0):
    return n


@fnhub.api(delayed_crontab=[0, 2])
def fanned():
    return "fan"


@fnhub.api(fixed_crontab="*/2 * * * * *")
def fixed():
    return "fixed"


@fnhub.api(timeout=10)
def slow(seconds: float = 2.5):
    time.sleep(seconds)
    return "slow"


@fnhub.api()
def retime(expr: str, expires: float | None = None):
    fnhub.cron.set_expression(expr, expires=expires)
    return fnhub.cron.get_expression()
"""


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        redis_url=REDIS_URL,
        data_dir=tmp_path / ".fnhub",
        project_dir=tmp_path,
        key_prefix=f"crontest-{uuid.uuid4().hex[:10]}",
        cron_lease_seconds=1.0,
        **overrides,
    )


def wipe(settings: Settings) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{settings.key_prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    s = make_settings(tmp_path)
    yield s
    wipe(s)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = open_services(settings)
    svc.scripts.publish({"jobs": SCRIPT})
    yield svc
    svc.close()


def add_job(services: Services, **fields: object) -> CronJobSpec:
    spec = CronJobSpec(**fields)  # type: ignore[arg-type]
    check(spec, QueueClient(services.settings, services.redis).active(), "UTC")
    JobStore(services.db).replace(spec)
    bump(services.redis, services.keys.cron_revision)
    return spec


def queued(services: Services, queue: str = "cron") -> list[Task]:
    """Tasks waiting in a queue stream (no worker reads them in these tests)."""
    entries = services.redis.xrange(services.keys.queue(queue))
    return [decode_task(fields[b"e"]) for _, fields in entries]


def ticks_of(tasks: list[Task], job: str) -> list[int]:
    return [t.meta["cron"]["tick"] for t in tasks if t.origin_id == job]


@contextlib.asynccontextmanager
async def running_beat(settings: Settings, services: Services, **kw: object) -> AsyncIterator[Beat]:
    client = async_redis(settings)
    beat = Beat(settings, client, services.db, **kw)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(beat.run(stop))
    try:
        yield beat
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await client.aclose()


async def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
