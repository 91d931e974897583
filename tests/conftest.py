"""Shared fixtures: real Redis (the machine's, under a unique key prefix), real worker processes.

Every test gets its own key prefix, data folder and SQLite file, so tests never collide and never
depend on what an earlier run left behind.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from fnhub.bootstrap import Services, open_services
from fnhub.calling.caller import Caller
from fnhub.calling.queue_client import QueueClient
from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.redis_client import async_redis
from fnhub.store.db import Database
from fnhub.tasks import TaskResult

REDIS_URL = os.environ.get("FNHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("FNHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
MYSQL_URL = os.environ.get("FNHUB_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")


#: a script function (its script imports os, time and fnhub) that on its first attempt stores its
#: pid in the script's cache under "pid" and sleeps, for a test to kill its process; a retry
#: returns {"attempt": n}
CRASH_ONCE = """
@fnhub.api("crash once")
def crash_once():
    if fnhub.context.attempt == 1:
        fnhub.cache.set("pid", os.getpid())
        time.sleep(60)
    return {"attempt": fnhub.context.attempt}
"""


def free_port() -> int:
    """A port nothing listens on now, for a server a test starts a moment later.

    Drawn at random below the kernel's ephemeral range (32768 and up on Linux), not from it:
    a port from `bind(0)` is free only until some process's outgoing connection is given it,
    and a loaded test run opens thousands of those (a hub once failed to bind this way)."""
    rng = random.SystemRandom()
    while True:
        port = rng.randrange(10_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05):
    """Poll until `predicate()` is truthy; return its value or fail with the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@contextlib.contextmanager
def redis_url_without_client(r: redis.Redis, url: str) -> Iterator[str]:
    """`url` as a Redis ACL user allowed everything but CLIENT (SETNAME, LIST): a process
    whose connections stay unnamed. The user is removed after."""
    user, password = f"fnhub-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    r.acl_setuser(
        user,
        enabled=True,
        passwords=[f"+{password}"],
        keys=["~*"],
        channels=["&*"],
        commands=["+@all", "-client"],
    )
    try:
        yield url.replace("redis://", f"redis://{user}:{password}@", 1)
    finally:
        r.acl_deluser(user)


def fresh_database(kind: str, tmp_path) -> Iterator[str]:
    """The URL of an empty database of `kind` (sqlite, postgresql, mysql), dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'records.db'}"
        return
    name = f"fnhub_test_{uuid.uuid4().hex[:10]}"
    admin_url = POSTGRES_URL + "/postgres" if kind == "postgresql" else MYSQL_URL
    admin = Database(admin_url).engine
    options = {"isolation_level": "AUTOCOMMIT"}
    with admin.connect().execution_options(**options) as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield (POSTGRES_URL if kind == "postgresql" else MYSQL_URL) + f"/{name}"
    finally:
        with admin.connect().execution_options(**options) as conn:
            if kind == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE {name}"))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    prefix = f"fnhub-test-{uuid.uuid4().hex[:10]}"
    s = Settings(
        project_dir=tmp_path,
        data_dir=tmp_path / ".fnhub",
        redis_url=REDIS_URL,
        db_url=f"sqlite:///{tmp_path / 'fnhub.db'}",
        key_prefix=prefix,
        processes=2,
        heartbeat_seconds=0.5,
        shutdown_grace_seconds=3,
    )
    s.data_dir.mkdir(parents=True, exist_ok=True)
    yield s
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    client.close()


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = open_services(settings)
    yield svc
    svc.close()


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[QueueClient]:
    c = QueueClient(settings)
    yield c
    c.close()


def _run_supervisor(settings_json: str, queues: list[str] | None, processes: int | None) -> None:
    from fnhub.worker.supervisor import Supervisor

    logging.basicConfig(level=logging.WARNING)
    Supervisor(Settings.model_validate_json(settings_json), queues, processes).run()


class WorkerHandle:
    """A real `fnhub worker` supervisor running in its own process."""

    def __init__(self, settings: Settings, queues: list[str] | None, processes: int | None):
        self.settings = settings
        ctx = multiprocessing.get_context("spawn")
        self.process = ctx.Process(
            target=_run_supervisor, args=(settings.model_dump_json(), queues, processes)
        )
        self.process.start()
        self.queues = queues or list(settings.queues)

    def wait_ready(self, client: QueueClient, timeout: float = 20.0) -> None:
        wait_for(lambda: all(client.queue_has_worker(q) for q in self.queues), timeout)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        return self.process.exitcode


@pytest.fixture
def start_worker(settings: Settings, client: QueueClient) -> Iterator[Callable[..., WorkerHandle]]:
    handles: list[WorkerHandle] = []

    def start(
        queues: list[str] | None = None,
        processes: int | None = None,
        *,
        wait: bool = True,
        settings_override: Settings | None = None,
    ) -> WorkerHandle:
        handle = WorkerHandle(settings_override or settings, queues, processes)
        handles.append(handle)
        if wait:
            handle.wait_ready(client)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def publish(services: Services) -> Callable[[dict[str, str]], None]:
    def do(scripts: dict[str, str]) -> None:
        services.scripts.publish(scripts)

    return do


def call_ok(client: QueueClient, ref: str, kwargs: dict | None = None, **options) -> TaskResult:
    result = client.call(ref, kwargs or {}, **options)
    assert result.status == "success", (result.error_type, result.error_message, result.traceback)
    return result


@contextlib.asynccontextmanager
async def running_caller(settings: Settings, caller_id: str) -> AsyncIterator[Caller]:
    """A started `Caller` (a server's calling side) on its own client, stopped afterwards."""
    client = async_redis(settings)
    c = Caller(settings, client, Keys(settings.key_prefix), caller_id)
    await c.start()
    try:
        yield c
    finally:
        await c.stop()
        await client.aclose()


#: files that take minutes each: collected first, so that `-n 3 --dist loadfile` starts them
#: while the many short files fill the other processes, instead of one of them running alone at
#: the end of the suite (the cluster run, last in the alphabet, added ~3 min to the wall clock)
LONG_FILES = (
    "tests/test_cluster_quick.py",
    "tests/subscriptions/test_mqtt_kafka.py",
    "tests/subscriptions/test_direct_kafka.py",
    "tests/test_worker.py",
    "tests/test_serve.py",
    "tests/test_apply.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONG_FILES.index(path) if path in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: every file keeps its own order
